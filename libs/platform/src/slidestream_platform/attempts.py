"""Delivery attempts counted where a crash cannot reset them: the service's own table.

A message whose handling kills the process (killed for memory, a segfault in a native slide
library) never reaches the delivery middleware's ``except``: an attempt counter in memory starts
again at zero with every restart, and the message kills every new process for ever. So the
middleware records each delivery *before* the handler runs, in the consuming service's own
database:

* :meth:`AttemptLedger.begin` marks the message in flight; when it finds the mark of an earlier
  delivery that neither returned nor raised in a process that is gone, that delivery counts as a
  failed attempt (a crash);
* :meth:`AttemptLedger.fail` counts a failed attempt the middleware saw (a retryable error, a
  bug) and clears the mark; a dependency outage clears it without counting
  (:meth:`AttemptLedger.wait`);
* :meth:`AttemptLedger.forget` drops the row once the message is done (handled or dead-lettered).

The table is keyed by (consumer group, topic, partition, offset): the message's place in the log,
which a redelivery after a restart keeps. Each service declares it the way it declares its
decisions (``class DeliveryAttemptRow(DeliveryAttemptColumns, DeidTable, table=True)``) and
migrates it with its own tables; :class:`MemoryAttempts` keeps the same bookkeeping in memory for
tests and tools without a database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from sqlalchemy import BigInteger, DateTime, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from slidestream_platform.db import session_scope

RowT = TypeVar("RowT", bound="DeliveryAttemptColumns")
T = TypeVar("T")
Position = tuple[str, int, int]
"""(topic, partition, offset): where a message sits in the log."""
WRITE_ATTEMPTS = 3
"""Two replicas inserting the same message's row (a rebalance mid-delivery) settle in one
retry; more is a bug."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What :meth:`AttemptLedger.begin` found about the message about to be handled."""

    failures: int
    """Failed attempts so far, crashes included."""
    crashed: bool
    """The previous delivery ended with its process (this call counted it)."""


class AttemptLedger(Protocol):
    def begin(self, position: Position) -> Attempt: ...

    def fail(self, position: Position) -> int: ...

    def wait(self, position: Position) -> None: ...

    def forget(self, position: Position) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryAttemptColumns(SQLModel):
    """The columns of a service's delivery attempts table (see the module docstring)."""

    consumer_group: str = Field(primary_key=True, max_length=255)
    topic: str = Field(primary_key=True, max_length=249)  # Kafka's longest topic name
    partition: int = Field(primary_key=True)
    offset: int = Field(primary_key=True, sa_type=BigInteger)
    failures: int = 0
    in_flight: bool = False
    """A delivery began and has not ended yet (or its process died)."""
    updated_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))


def _settled(write: Callable[[], T]) -> T:
    """``write``, again after a unique-key race with another replica (it re-reads the winner)."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return write()
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


class SqlDeliveryAttempts(Generic[RowT]):
    """One row per message being handled, in the service's own table (``row_type``)."""

    def __init__(self, engine: Engine, row_type: type[RowT], consumer_group: str) -> None:
        self._engine = engine
        self._row_type = row_type
        self._group = consumer_group
        self._begun: set[Position] = set()
        """Messages this process began: their mark is no crash even where clearing it failed."""

    def _key(self, position: Position) -> tuple[str, str, int, int]:
        return (self._group, *position)

    def begin(self, position: Position) -> Attempt:
        attempt = _settled(lambda: self._begin(position))
        self._begun.add(position)
        return attempt

    def _row(self, session: Session, position: Position) -> RowT:
        row = session.get(self._row_type, self._key(position))
        if row is not None:
            return row
        group, topic, partition, offset = self._key(position)
        fields = {"consumer_group": group, "topic": topic, "partition": partition}
        return self._row_type.model_validate({**fields, "offset": offset})

    def _begin(self, position: Position) -> Attempt:
        with session_scope(self._engine) as session:
            row = self._row(session, position)
            crashed = row.in_flight and position not in self._begun
            if crashed:
                row.failures += 1
            row.in_flight = True
            row.updated_at = utc_now()
            session.add(row)
            return Attempt(failures=row.failures, crashed=crashed)

    def fail(self, position: Position) -> int:
        return _settled(lambda: self._end(position, counts=True))

    def wait(self, position: Position) -> None:
        _settled(lambda: self._end(position, counts=False))

    def _end(self, position: Position, *, counts: bool) -> int:
        with session_scope(self._engine) as session:
            row = self._row(session, position)
            row.failures += 1 if counts else 0
            row.in_flight = False
            row.updated_at = utc_now()
            session.add(row)
            return row.failures

    def forget(self, position: Position) -> None:
        with session_scope(self._engine) as session:
            row = session.get(self._row_type, self._key(position))
            if row is not None:
                session.delete(row)
        self._begun.discard(position)


@dataclass(slots=True)
class MemoryAttempts:
    """The ledger in memory: counts what the middleware sees, never a crash (it dies with the
    process). For tests and tools that consume without a database."""

    failures: dict[Position, int] = field(default_factory=dict)

    def begin(self, position: Position) -> Attempt:
        return Attempt(failures=self.failures.get(position, 0), crashed=False)

    def fail(self, position: Position) -> int:
        self.failures[position] = self.failures.get(position, 0) + 1
        return self.failures[position]

    def wait(self, position: Position) -> None:
        return None

    def forget(self, position: Position) -> None:
        self.failures.pop(position, None)

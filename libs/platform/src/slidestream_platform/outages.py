"""Which dependency a failure says is down, and the outages ``/readyz`` reports meanwhile.

:func:`dependency_down` is where the delivery middleware tells an outage (the work waits for as
long as it lasts) from a failure of the message (bounded retries, then a dead letter). It walks
the exception's chain, so the code that met the failure need not wrap it:

* :class:`~slidestream_platform.errors.DependencyDownError`: its own ``dependency`` (Triton,
  Milvus, a full scratch volume...);
* the object store unreachable, answering 5xx/429, throttling or full
  (:func:`~slidestream_platform.objectstore.error_mapping.is_store_unavailable`, under the
  ``RetryableError`` the adapter raised): ``object_store``;
* the database unreachable or dropping the connection (SQLAlchemy's ``OperationalError`` and
  friends; for SQLite only a locked or unopenable file, since SQLite reports a missing table
  as an ``OperationalError`` too): ``database``;
* Kafka unreachable or without a leader (``aiokafka``'s retriable errors, timeouts): ``kafka``.

The names are those of the readiness checks (:mod:`slidestream_platform.checks`,
:mod:`slidestream_platform.service`). :class:`Outages` remembers what the waiting deliveries last
met, so ``/readyz`` reports the dependency down while a message waits for it, even where the
readiness probe itself passes (a full bucket still answers a HEAD).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from aiokafka.errors import KafkaError, KafkaTimeoutError
from sqlalchemy import exc as sql

from slidestream_platform.attempts import Position
from slidestream_platform.errors import DependencyDownError
from slidestream_platform.objectstore.error_mapping import is_store_unavailable

DATABASE: Final = "database"
OBJECT_STORE: Final = "object_store"
KAFKA: Final = "kafka"
MAX_CHAIN_LINKS: Final = 16
"""Deeper chains than this are cut (a cycle through ``__context__`` is possible)."""
SQLITE_OUTAGE_HINTS: Final = (
    "database is locked",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
)
OUTAGE_STALE_AFTER_S: Final = 180.0
"""An outage nobody met again for this long is forgotten (its message moved to another consumer,
say); a waiting delivery meets it again at least every backoff cap."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    link: BaseException | None = error
    for _ in range(MAX_CHAIN_LINKS):
        if link is None:
            return
        yield link
        link = link.__cause__ or link.__context__


def _database_down(error: BaseException) -> bool:
    if isinstance(error, sql.DisconnectionError | sql.TimeoutError):
        return True
    if not isinstance(error, sql.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sql.OperationalError | sql.InterfaceError):
        return False
    if isinstance(error.orig, sqlite3.Error):
        message = str(error.orig).lower()
        return any(hint in message for hint in SQLITE_OUTAGE_HINTS)
    return True  # PostgreSQL: refused, reset, shut down, or a deadlock that a retry settles


def _kafka_down(error: BaseException) -> bool:
    return isinstance(error, KafkaError) and (
        error.retriable or isinstance(error, KafkaTimeoutError)
    )


def dependency_down(error: BaseException) -> str | None:
    """The readiness name of the dependency ``error`` says is down, or ``None``."""
    for link in _chain(error):
        if isinstance(link, DependencyDownError):
            return link.dependency
        if _database_down(link):
            return DATABASE
        if is_store_unavailable(link):
            return OBJECT_STORE
        if _kafka_down(link):
            return KAFKA
    return None


@dataclass(frozen=True, slots=True)
class _Sighting:
    position: Position
    at_s: float
    error_class: str


@dataclass(slots=True)
class Outages:
    """The dependencies waiting deliveries found down, until one of them gets through."""

    stale_after_s: float = OUTAGE_STALE_AFTER_S
    clock: Callable[[], float] = time.monotonic
    _down: dict[str, _Sighting] = field(default_factory=dict)

    def report(self, dependency: str, position: Position, error: BaseException) -> None:
        self._down[dependency] = _Sighting(position, self.clock(), type(error).__name__)

    def resolved(self, position: Position) -> None:
        """The message at ``position`` was handled: what it waited for is back."""
        for name in [n for n, seen in self._down.items() if seen.position == position]:
            del self._down[name]

    def current(self) -> dict[str, str]:
        """Readiness failures: dependency → the error class a delivery last met."""
        now = self.clock()
        for name in [n for n, s in self._down.items() if now - s.at_s > self.stale_after_s]:
            del self._down[name]
        return {name: f"{seen.error_class} (a delivery waits)" for name, seen in self._down.items()}

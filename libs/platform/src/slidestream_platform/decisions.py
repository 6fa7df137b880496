"""A service's stored decision about one input, and its publication exactly once.

The pattern every slide step follows (``docs/architecture.md``, "Delivery: effectively once"):

1. do the work; write the outputs under deterministic keys (a redo overwrites);
2. take the :class:`~slidestream_platform.publication.VerifiedPublisher` mark of the first
   event's partition and store the decision — the exact events, as JSON — in the service's own
   table, keyed by (slide id, input digest);
3. publish the events with deterministic CloudEvents ids, then record "published".

A redelivery finds the decision: nothing to do when it was published; otherwise the first
event is looked for after the mark (a crash after publishing and before recording it) and only
what is missing goes out. The later events (statuses) are idempotent for their consumers (same
id, same state), so they are simply sent again.

:func:`decide_once` is the whole cycle over a :class:`DecisionColumns` table (deid, convert,
qc). Upload has no consumed message to redeliver: its record is the lease-guarded upload row the
reconciler finishes, so it takes the two halves that talk to Kafka — :meth:`DecisionPublisher.mark`
and :meth:`DecisionPublisher.announce` — and keeps the mark and "published" in that row.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID, uuid5

from sqlalchemy import BigInteger, DateTime, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from slidestream_contracts.events import EVENT_BY_TOPIC, SlideEvent
from slidestream_platform.broker import ServiceBus
from slidestream_platform.publication import PublishMark, VerifiedPublisher

RowT = TypeVar("RowT", bound="DecisionColumns")
RecordWith = Callable[[Session], None]
"""Writes of the service's own that belong to its decision's transaction (deid's audit entry,
vault rows and retention): stored with the decision, or not at all."""
WRITE_ATTEMPTS = 3
"""A unique-key race with another replica is settled by re-reading; more than two is a bug."""


class Publisher(Protocol):
    async def publish(self, event: SlideEvent, *, event_id: UUID | None = None) -> None: ...


class Verifier(Protocol):
    """The exactly-once helper (:class:`~slidestream_platform.publication.VerifiedPublisher`)."""

    async def mark(self, event: SlideEvent) -> PublishMark: ...

    async def was_published(self, event: SlideEvent, mark: PublishMark, event_id: UUID) -> bool: ...


def input_digest(artefact_sha256s: Sequence[str]) -> str:
    """One sha256 for a decision's input: the artefact's own for one object, else a digest of the
    sorted digests (a DICOM series or a converted pyramid is several objects, in no guaranteed
    order)."""
    if len(artefact_sha256s) == 1:
        return artefact_sha256s[0]
    joined = "\n".join(sorted(artefact_sha256s)).encode()
    return hashlib.sha256(joined).hexdigest()


def events_to_json(events: Sequence[SlideEvent]) -> str:
    return json.dumps(
        [{"topic": e.TOPIC.value, "event": e.model_dump(mode="json")} for e in events]
    )


def events_from_json(stored: str) -> list[SlideEvent]:
    return [
        EVENT_BY_TOPIC[item["topic"]].model_validate(item["event"]) for item in json.loads(stored)
    ]


@dataclass(frozen=True, slots=True)
class DecisionPublisher:
    """Publishes a stored decision's events once (see the module docstring)."""

    publisher: Publisher
    verifier: Verifier
    namespace: UUID
    """Of the service's deterministic event ids: UUIDv5(namespace, slide/digest/topic)."""

    @classmethod
    def for_bus(cls, bus: ServiceBus, namespace: UUID) -> DecisionPublisher:
        """Publishing through the service's bus, verified against its Kafka."""
        verifier = VerifiedPublisher(bus.settings.kafka_bootstrap)
        return cls(publisher=bus.publisher, verifier=verifier, namespace=namespace)

    def event_id(self, slide_id: UUID, input_digest: str, topic: str) -> UUID:
        return uuid5(self.namespace, f"{slide_id}/{input_digest}/{topic}")

    async def mark(self, events: Sequence[SlideEvent]) -> PublishMark:
        """Where the first event would land now: taken before the decision is recorded."""
        return await self.verifier.mark(events[0])

    async def announce(
        self,
        outgoing: Sequence[tuple[SlideEvent, UUID]],
        mark: PublishMark,
        *,
        verify: bool,
    ) -> None:
        """Publish each event with its id; with ``verify`` (the decision was recorded by an
        earlier attempt) the first is skipped when it is already in the log after ``mark``."""
        for index, (event, event_id) in enumerate(outgoing):
            if verify and index == 0 and await self.verifier.was_published(event, mark, event_id):
                continue
            await self.publisher.publish(event, event_id=event_id)

    async def publish(
        self,
        slide_id: UUID,
        input_digest: str,
        events: Sequence[SlideEvent],
        mark: PublishMark,
        *,
        verify: bool,
    ) -> None:
        """:meth:`announce` with the ids of this decision (slide, input digest, topic)."""
        outgoing = [(e, self.event_id(slide_id, input_digest, e.TOPIC)) for e in events]
        await self.announce(outgoing, mark, verify=verify)


class DecisionColumns(SQLModel):
    """The columns of a service's decision table; the service's table class inherits them
    (``class ConversionRow(DecisionColumns, ConvertTable, table=True)``) and adds its own."""

    slide_id: UUID = Field(primary_key=True)
    input_sha256: str = Field(primary_key=True, max_length=64)
    """Digest of the input the decision is about (one artefact's sha256, or of several)."""
    tenant: str = Field(index=True, max_length=63)
    events_json: str = Field(max_length=400_000)
    """The events to publish, in order (references and numbers only, never patient data)."""
    mark_partition: int
    mark_offset: int = Field(sa_type=BigInteger)
    decided_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class DecisionRecords(Protocol[RowT]):
    """Where a step keeps its decisions (:class:`SqlDecisionRecords`, or a service's own
    subclass of it that adds the rows its decisions are stored with)."""

    row_type: type[RowT]

    def find(self, slide_id: UUID, input_sha256: str) -> RowT | None: ...

    def insert_if_absent(
        self, row: RowT, record_with: RecordWith | None = None
    ) -> tuple[RowT, bool]: ...

    def mark_published(self, slide_id: UUID, input_sha256: str) -> None: ...


class SqlDecisionRecords(Generic[RowT]):
    """One row per decided input in the service's own table (``row_type``)."""

    def __init__(self, engine: Engine, row_type: type[RowT]) -> None:
        self._engine = engine
        self.row_type = row_type

    def find(self, slide_id: UUID, input_sha256: str) -> RowT | None:
        with Session(self._engine) as session:
            return session.get(self.row_type, (slide_id, input_sha256))

    def insert_if_absent(
        self, row: RowT, record_with: RecordWith | None = None
    ) -> tuple[RowT, bool]:
        """Store ``row`` (and ``record_with``'s rows, in the same transaction) and return it with
        ``True``; when a row for the same input exists already (another consumer decided it
        meanwhile), return that one with ``False`` and write nothing."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with Session(self._engine) as session:
                    existing = session.get(self.row_type, (row.slide_id, row.input_sha256))
                    if existing is not None:
                        return existing, False
                    if record_with is not None:
                        record_with(session)
                    stored = row.model_copy()
                    session.add(stored)
                    session.commit()
                    session.refresh(stored)
                    return stored, True
            except IntegrityError:
                # The decision itself, or a row written with it (deid's vault entry of a
                # patient another replica just recorded): the next attempt reads what won.
                if attempt == WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def mark_published(self, slide_id: UUID, input_sha256: str) -> None:
        with Session(self._engine) as session:
            row = session.get(self.row_type, (slide_id, input_sha256))
            if row is not None and row.published_at is None:
                row.published_at = datetime.now(UTC)
                session.add(row)
                session.commit()


@dataclass(frozen=True, slots=True)
class Decided:
    """What a service's work produced: the events to announce and the service's own columns
    of its decision row (``verdict``, ``conversion_s``…)."""

    events: Sequence[SlideEvent]
    columns: Mapping[str, object] = field(default_factory=dict)
    record_with: RecordWith | None = None


async def decide_once(
    decisions: DecisionPublisher,
    records: DecisionRecords[RowT],
    *,
    slide_id: UUID,
    tenant: str,
    input_digest: str,
    decide: Callable[[], Awaitable[Decided]],
) -> bool:
    """The pattern of the module docstring for one input: ``decide`` runs only when no decision
    is stored yet. Returns ``False`` when the decision had already been announced (a
    redelivery), ``True`` when its events were published now."""
    found = await asyncio.to_thread(records.find, slide_id, input_digest)
    if found is not None:
        row, fresh = found, False
    else:
        decided = await decide()
        mark = await decisions.mark(decided.events)
        candidate = records.row_type.model_validate(
            {
                "slide_id": slide_id,
                "input_sha256": input_digest,
                "tenant": tenant,
                "events_json": events_to_json(decided.events),
                "mark_partition": mark.partition,
                "mark_offset": mark.from_offset,
                **decided.columns,
            }
        )
        row, fresh = await asyncio.to_thread(
            records.insert_if_absent, candidate, decided.record_with
        )
    if row.published_at is not None:
        return False
    mark = PublishMark(partition=row.mark_partition, from_offset=row.mark_offset)
    events = events_from_json(row.events_json)
    await decisions.publish(slide_id, input_digest, events, mark, verify=not fresh)
    await asyncio.to_thread(records.mark_published, slide_id, input_digest)
    return True

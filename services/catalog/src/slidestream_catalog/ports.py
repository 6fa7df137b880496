"""What the catalog's handlers, API and reindex need from adapters: small Protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from slidestream_catalog.domain.search_projection import SlideFields
from slidestream_contracts.events import SlideEvent, SlideInferredV1

Partition = tuple[str, int]
"""A topic's partition: (topic, partition number)."""
Offsets = dict[Partition, int]


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record that is no valid event of its topic (the live consumer dead-letters these)."""

    topic: str
    partition: int
    offset: int
    error: str


@dataclass(frozen=True, slots=True)
class Generations:
    """Which generation of the search tables answers, and which one a reindex is building."""

    live: int
    building: int | None


class SearchStore(Protocol):
    """The search projection's tables (``adapters.search_store.SqlSearchStore``)."""

    def apply(self, event: SlideEvent) -> tuple[int, ...]:
        """Apply ``event`` to the live generation and to the one being built, if any, in one
        transaction; the generations written to."""
        ...

    def apply_to(self, event: SlideEvent, generation: int) -> None:
        """Apply ``event`` to ``generation`` only (a reindex), in one transaction."""
        ...

    def slide(self, slide_id: UUID) -> SlideFields | None:
        """The slide's record in the live generation."""
        ...

    def begin_rebuild(self) -> Generations: ...

    def swap(self, building: int, events_applied: int) -> int:
        """Make ``building`` live; the generation that was live."""
        ...

    def drop_generation(self, generation: int) -> None: ...


class RunIndexer(Protocol):
    """Something else that indexes a model run (the Milvus similarity index): called for every
    ``slides.inferred.v1`` event, per generation written, and told when a reindex swaps."""

    async def index_run(self, event: SlideInferredV1, generation: int) -> None: ...

    async def swap(self, old_generation: int, new_generation: int) -> None: ...


class EventLog(Protocol):
    """The projected topics, read by offset (``adapters.event_log.KafkaEventLog``)."""

    async def earliest(self) -> Offsets: ...

    async def latest(self) -> Offsets: ...

    def read(
        self, start: Mapping[Partition, int], end: Mapping[Partition, int]
    ) -> AsyncIterator[SlideEvent | Undecodable]:
        """Every record with ``start <= offset < end``, partition by partition in order."""
        ...

"""Rebuild the search tables from the topics into a fresh generation, then swap (``slidestream
admin reindex``). The live service keeps answering and keeps projecting throughout.

Steps:

1. **begin**: ``building = live + 1`` (its leftover rows from a rebuild that stopped are
   deleted); from now on the live consumer writes every event to both generations;
2. **snapshot**: the earliest and the end offsets of every partition of the projected topics;
3. **replay**: every record in that range is applied to the building generation (and model runs
   to every :class:`~slidestream_catalog.ports.RunIndexer`); undecodable records, events
   naming another tenant than their slide's and events naming objects outside their slide's
   prefix (:mod:`slidestream_platform.event_refs`) are counted and skipped, as the live
   consumer dead-letters them;
4. **swap**: ``live = building``, ``building = null`` in one transaction, then
   :meth:`RunIndexer.swap`;
5. **catch up**: records published after the snapshot, from the snapshot's end to the end now,
   are applied to the new live generation (idempotent: the live consumer may have applied them);
6. **drop**: the old generation's rows are deleted.

Only one reindex runs at a time (a second one would restart the first one's generation).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from slidestream_catalog.ports import EventLog, Offsets, RunIndexer, SearchStore, Undecodable
from slidestream_contracts.events import SlideInferredV1
from slidestream_contracts.lifecycle import TenantMismatchError
from slidestream_platform.errors import ForeignObjectKeyError, PoisonError
from slidestream_platform.event_refs import check_event_refs


class Progress(Protocol):
    """Where the reindex reports how far it is (a progress bar, or nothing)."""

    def start(self, total: int) -> None: ...

    def advance(self) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        """Nothing to show."""

    def advance(self) -> None:
        """Nothing to show."""


@dataclass(frozen=True, slots=True)
class ReindexSummary:
    generation: int
    """The generation that answers now."""
    events: int
    """Events applied, replay and catch-up together."""
    caught_up: int
    """Of those, events published while the replay ran."""
    undecodable: int
    refused: int
    """Events naming another tenant than their slide's."""
    unindexed: int
    """Model runs whose embeddings could not be indexed (gone from S3, not an embeddings file):
    catalogued without their vectors, as the live service dead-lettered them."""
    seconds: float


@dataclass
class _Counts:
    events: int = 0
    undecodable: int = 0
    refused: int = 0
    unindexed: int = 0


async def reindex(
    store: SearchStore,
    log: EventLog,
    run_indexers: Sequence[RunIndexer] = (),
    progress: Progress | None = None,
) -> ReindexSummary:
    """Rebuild, swap and catch up (the steps of the module docstring)."""
    began = time.monotonic()
    shown = progress or NoProgress()
    generations = store.begin_rebuild()
    building = generations.building
    if building is None:
        raise RuntimeError("begin_rebuild returned no generation to build")
    earliest = await log.earliest()
    snapshot = await log.latest()
    shown.start(sum(max(0, end - earliest.get(key, 0)) for key, end in snapshot.items()))
    counts = _Counts()
    await _replay(store, log, earliest, snapshot, building, run_indexers, counts, shown)
    store.swap(building, counts.events)
    for indexer in run_indexers:
        await indexer.swap(generations.live, building)
    replayed = counts.events
    await _replay(store, log, snapshot, await log.latest(), building, run_indexers, counts, None)
    store.drop_generation(generations.live)
    return ReindexSummary(
        generation=building,
        events=counts.events,
        caught_up=counts.events - replayed,
        undecodable=counts.undecodable,
        refused=counts.refused,
        unindexed=counts.unindexed,
        seconds=time.monotonic() - began,
    )


async def _replay(
    store: SearchStore,
    log: EventLog,
    start: Offsets,
    end: Offsets,
    generation: int,
    run_indexers: Sequence[RunIndexer],
    counts: _Counts,
    progress: Progress | None,
) -> None:
    async for item in log.read(start, end):
        if progress is not None:
            progress.advance()
        if isinstance(item, Undecodable):
            counts.undecodable += 1
            continue
        try:
            check_event_refs(item)
            store.apply_to(item, generation)
        except (TenantMismatchError, ForeignObjectKeyError):
            counts.refused += 1
            continue
        counts.events += 1
        if isinstance(item, SlideInferredV1):
            for indexer in run_indexers:
                try:
                    await indexer.index_run(item, generation)
                except PoisonError:
                    counts.unindexed += 1

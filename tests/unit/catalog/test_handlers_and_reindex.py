"""The catalog's handlers and the reindex workflow on a real SQLite store: run indexers are
called per generation written, a tenant mismatch is an invalid event, and a reindex rebuilds,
swaps, catches up and drops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from slidestream_catalog import handlers
from slidestream_catalog.adapters.search_store import SqlSearchStore
from slidestream_catalog.main import MIGRATIONS_DIR
from slidestream_catalog.ports import Offsets, Partition, Undecodable
from slidestream_catalog.reindex import reindex
from slidestream_contracts.events import SlideEvent, SlideInferredV1
from slidestream_platform.db import DatabaseSettings, make_engine, upgrade_to_head
from slidestream_platform.errors import InvalidEventError, ObjectNotFoundError
from tests.support.catalog import SlideEvents, generation_rows

TOPIC = "slides.status.v1"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(DatabaseSettings(data_dir=tmp_path), "catalog")
    upgrade_to_head(engine, "catalog", MIGRATIONS_DIR)
    yield engine
    engine.dispose()


class RecordingIndexer:
    def __init__(self) -> None:
        self.runs: list[tuple[str, int]] = []
        self.swaps: list[tuple[int, int]] = []

    async def index_run(self, event: SlideInferredV1, generation: int) -> None:
        self.runs.append((event.model_name, generation))

    async def swap(self, old_generation: int, new_generation: int) -> None:
        self.swaps.append((old_generation, new_generation))


class ListLog:
    """An event log of one partition whose records are a list (``None``: undecodable); records
    appended while a reindex runs are what its catch-up must find."""

    def __init__(self, records: list[SlideEvent | None]) -> None:
        self.records = records
        self.on_latest: list[SlideEvent | None] = []

    async def earliest(self) -> Offsets:
        return {(TOPIC, 0): 0}

    async def latest(self) -> Offsets:
        end = {(TOPIC, 0): len(self.records)}
        self.records.extend(self.on_latest)  # published just after this snapshot
        self.on_latest = []
        return end

    async def read(
        self, start: Mapping[Partition, int], end: Mapping[Partition, int]
    ) -> AsyncIterator[SlideEvent | Undecodable]:
        for offset in range(start[(TOPIC, 0)], end[(TOPIC, 0)]):
            record = self.records[offset]
            yield record if record is not None else Undecodable(TOPIC, 0, offset, "bad json")


async def test_the_inferred_handler_indexes_the_run_in_every_generation_written(
    engine: sa.Engine,
) -> None:
    store = SqlSearchStore(engine)
    indexer = RecordingIndexer()
    slide = SlideEvents("acme")
    await handlers.on_slide_inferred(slide.inferred(1), store, [indexer])
    store.begin_rebuild()
    await handlers.on_slide_inferred(slide.inferred(2, model="stain-net"), store, [indexer])
    assert indexer.runs == [("tissue-classifier", 1), ("stain-net", 1), ("stain-net", 2)]


async def test_another_tenants_event_is_an_invalid_event(engine: sa.Engine) -> None:
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")
    await handlers.on_slide_uploaded(slide.uploaded(0), store)
    with pytest.raises(InvalidEventError) as raised:
        await handlers.on_slide_qc(SlideEvents("globex", slide.slide_id).qc(1), store)
    assert raised.value.reason == "tenant-mismatch"


async def test_reindex_rebuilds_swaps_catches_up_and_drops(engine: sa.Engine) -> None:
    store = SqlSearchStore(engine)
    slide, late = SlideEvents("acme"), SlideEvents("acme")
    history: list[SlideEvent] = slide.history()
    for event in history:
        store.apply(event)
    live_before = generation_rows(engine, 1)
    intruder = SlideEvents("globex", slide.slide_id).qc(9)
    # Acme's own slide, naming globex's objects: the live consumer dead-letters it.
    pointing_away = slide.uploaded(9).model_copy(
        update={"original": SlideEvents("globex").uploaded(0).original}
    )
    log = ListLog([*history, None, intruder, pointing_away])
    log.on_latest = [late.uploaded(0)]
    indexer = RecordingIndexer()

    summary = await reindex(store, log, [indexer])

    assert (summary.generation, summary.events, summary.caught_up) == (2, len(history) + 1, 1)
    assert (summary.undecodable, summary.refused) == (1, 2)
    assert indexer.runs == [("tissue-classifier", 2)]
    assert indexer.swaps == [(1, 2)]
    assert (store.generations().live, store.generations().building) == (2, None)
    assert generation_rows(engine, 1) == {table: [] for table in live_before}
    rebuilt = generation_rows(engine, 2, {slide.slide_id})
    assert rebuilt == live_before
    assert store.slide(late.slide_id) is not None


class MissingEmbeddingsIndexer(RecordingIndexer):
    """An indexer whose runs' embeddings are gone from the object store."""

    async def index_run(self, event: SlideInferredV1, generation: int) -> None:
        raise ObjectNotFoundError(f"{event.model_name}: embeddings.npz")


async def test_a_run_whose_embeddings_are_gone_is_catalogued_without_vectors(
    engine: sa.Engine,
) -> None:
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")

    summary = await reindex(store, ListLog(list(slide.history())), [MissingEmbeddingsIndexer()])

    assert (summary.generation, summary.unindexed) == (2, 1)
    record = store.slide(slide.slide_id)
    assert record is not None and record.inferred_at is not None

"""The search store on SQLite (the embedded default): rows, generations, full text in step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from slidestream_catalog.adapters.search_store import SqlSearchStore
from slidestream_catalog.main import MIGRATIONS_DIR
from slidestream_contracts.lifecycle import TenantMismatchError
from slidestream_contracts.states import SlideState, Step
from slidestream_platform.db import DatabaseSettings, make_engine, upgrade_to_head
from tests.support.catalog import SlideEvents, at, generation_rows


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(DatabaseSettings(data_dir=tmp_path), "catalog")
    upgrade_to_head(engine, "catalog", MIGRATIONS_DIR)
    yield engine
    engine.dispose()


def fts_match(engine: sa.Engine, word: str) -> list[UUID]:
    with engine.connect() as connection:
        return [
            UUID(str(row[0]))
            for row in connection.execute(
                sa.text(
                    "SELECT s.slide_id FROM search_slide_fts f "
                    "JOIN search_slide s ON s.rowid = f.rowid WHERE search_slide_fts MATCH :w"
                ),
                {"w": word},
            )
        ]


def test_catalog_slide_is_gone_and_the_pointer_starts_at_one(engine: sa.Engine) -> None:
    assert "catalog_slide" not in sa.inspect(engine).get_table_names()
    generations = SqlSearchStore(engine).generations()
    assert (generations.live, generations.building) == (1, None)


def test_events_in_any_order_and_twice_give_the_same_rows(
    engine: sa.Engine, tmp_path: Path
) -> None:
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")
    for event in slide.history():
        assert store.apply(event) == (1,)
    rows = generation_rows(engine, 1)

    other = make_engine(DatabaseSettings(data_dir=tmp_path / "other"), "catalog")
    upgrade_to_head(other, "catalog", MIGRATIONS_DIR)
    shuffled = SqlSearchStore(other)
    for event in [*reversed(slide.history()), *slide.history()]:
        shuffled.apply(event)
    assert generation_rows(other, 1) == rows
    other.dispose()

    [row] = rows["search_slide"]
    assert (row["organ"], row["qc_verdict"], row["state"], row["converted_bytes"]) == (
        "colon",
        "warn",
        "inferred",
        3000,
    )
    assert [m["name"] for m in rows["search_measure"]] == ["blur_fraction", "tissue_fraction"]
    assert sorted(s["output"] for s in rows["search_score"]) == [
        "fraction:stroma",
        "fraction:tumour",
    ]
    assert [r["model"] for r in rows["search_model_run"]] == ["tissue-classifier"]


def test_a_newer_run_replaces_scores_and_full_text_follows(engine: sa.Engine) -> None:
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")
    store.apply(slide.inferred(4, summary={"fraction:tumour": 0.3, "fraction:necrosis": 0.2}))
    assert fts_match(engine, "necrosis") == [slide.slide_id]
    store.apply(slide.inferred(6, version="2", summary={"fraction:tumour": 0.5}))
    rows = generation_rows(engine, 1)
    assert [(s["output"], s["value"]) for s in rows["search_score"]] == [("fraction:tumour", 0.5)]
    assert rows["search_model_run"][0]["model_version"] == "2"
    assert fts_match(engine, "necrosis") == []
    assert fts_match(engine, "tumour") == [slide.slide_id]


def test_an_older_stage_event_writes_nothing(engine: sa.Engine) -> None:
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")
    store.apply(slide.qc(5, verdict="fail", blur=0.9))
    before = generation_rows(engine, 1)
    store.apply(slide.qc(2, verdict="pass", blur=0.01))
    assert generation_rows(engine, 1) == before


def test_another_tenant_is_refused_and_nothing_is_written(engine: sa.Engine) -> None:
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")
    store.apply(slide.uploaded(0))
    before = generation_rows(engine, 1)
    with pytest.raises(TenantMismatchError):
        store.apply(SlideEvents("globex", slide.slide_id).qc(1))
    assert generation_rows(engine, 1) == before


def test_a_rebuild_writes_both_generations_then_swaps(engine: sa.Engine) -> None:
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")
    store.apply(slide.uploaded(0))
    store.apply_to(slide.uploaded(0), 2)  # a leftover of a rebuild that stopped half-way
    store.apply_to(slide.qc(9), 2)

    generations = store.begin_rebuild()
    assert (generations.live, generations.building) == (1, 2)
    assert generation_rows(engine, 2)["search_slide"] == []
    store.apply_to(slide.uploaded(0), 2)
    assert store.apply(slide.status(1, SlideState.UPLOADED, Step.UPLOAD)) == (1, 2)
    assert generation_rows(engine, 2) == generation_rows(engine, 1)
    assert store.slide(slide.slide_id) is not None

    assert store.swap(2, events_applied=2) == 1
    store.drop_generation(1)
    assert (store.generations().live, store.generations().building) == (2, None)
    assert store.apply(slide.deidentified(2)) == (2,)
    assert generation_rows(engine, 1)["search_slide"] == []
    fields = store.slide(slide.slide_id)
    assert fields is not None
    assert (fields.state, fields.scanner_vendor, fields.updated_at) == ("uploaded", "aperio", at(2))
    assert fts_match(engine, "aperio") == [slide.slide_id]


def test_texts_longer_than_their_column_are_cut_to_fit(engine: sa.Engine) -> None:
    # PostgreSQL refuses a longer value (SQLite would keep it): the store cuts it for both.
    store = SqlSearchStore(engine)
    slide = SlideEvents("acme")
    store.apply(slide.uploaded(0, stain="x" * 150))
    store.apply(slide.uploaded(0, stain="x" * 150))  # and the same event again writes the same
    [row] = generation_rows(engine, 1)["search_slide"]
    assert row["stain"] == "x" * 100

"""The search projection from real events in Kafka (ordering, duplicates, out-of-order stages,
dead letters) and ``slidestream admin reindex`` (the rebuilt generation equals the live one),
on SQLite and PostgreSQL.

The topics are the shared stack's: its pipeline steps also consume the stage events published
here, find no objects behind them and publish ``failed:<step>`` statuses (at the current time).
So two slides' rows are compared on their stage columns, and the status columns are checked
where no step reacts (a slide with status and rejection events only) or once rows are quiet.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa

from slidestream_catalog.adapters.search_store import SqlSearchStore
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.topics import Topic, dead_letter_topic
from slidestream_platform.broker import make_bus
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from tests.support.catalog import (
    STACK_WAIT_S,
    CatalogProcess,
    SlideEvents,
    generation_rows,
    publish,
    wait_until,
)
from tests.support.inference_stack import SLIDESTREAM
from tests.support.stack import Collector

pytestmark = pytest.mark.integration


REINDEX_TIMEOUT_S = 600
QUIET_S = 5.0
"""Rows unchanged this long are taken as settled (the pipeline's failure statuses came within a
second of the stage events in every run seen)."""
STATUS_COLUMNS = {"state", "step", "reason", "detail", "status_at", "updated_at", "text"}
STAGE_COLUMNS = ("uploaded_at", "deidentified_at", "converted_at", "qc_at", "inferred_at")


def stage_values(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows without the slide id and the columns the stack's own steps may change; object
    keys lie under each slide's own prefix, so the id is taken out of them too."""

    def without_id(row: dict[str, Any]) -> dict[str, Any]:
        slide = str(UUID(str(row["slide_id"])))  # SQLite keeps a UUID as 32 hex digits
        return {
            k: v.replace(slide, "<slide>") if isinstance(v, str) else v
            for k, v in row.items()
            if k != "slide_id" and k not in STATUS_COLUMNS
        }

    return {table: [without_id(row) for row in found] for table, found in rows.items()}


def differing(
    first: dict[str, list[dict[str, Any]]], second: dict[str, list[dict[str, Any]]]
) -> dict[str, list[tuple[str, Any, Any]]]:
    """The (column, first, second) pairs that differ, per table: what a failure shows."""
    a, b = stage_values(first), stage_values(second)
    return {
        table: [
            (k, row_a.get(k), row_b.get(k))
            for row_a, row_b in zip(a[table], b.get(table, []), strict=False)
            for k in row_a
            if row_a.get(k) != row_b.get(k)
        ]
        for table in a
    }


def live_rows(engine: sa.Engine, slide_ids: set[UUID]) -> dict[str, list[dict[str, Any]]]:
    return generation_rows(engine, SqlSearchStore(engine).generations().live, slide_ids)


def every_stage_projected(engine: sa.Engine, slide_ids: set[UUID]) -> bool:
    slides = live_rows(engine, slide_ids)["search_slide"]
    return len(slides) == len(slide_ids) and all(
        row[column] is not None for row in slides for column in STAGE_COLUMNS
    )


async def quiet_rows(engine: sa.Engine, slide_ids: set[UUID]) -> dict[str, list[dict[str, Any]]]:
    """The slides' live rows once they stop changing (see :data:`QUIET_S`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STACK_WAIT_S
    rows = live_rows(engine, slide_ids)
    while loop.time() < deadline:
        await asyncio.sleep(QUIET_S)
        again = live_rows(engine, slide_ids)
        if again == rows:
            return rows
        rows = again
    raise AssertionError("the slides' rows never settled")


async def publish_malformed(stack_env: dict[str, str], slide_id: UUID) -> None:
    bus = make_bus(
        ServiceSettings(service_name="catalog-test", kafka_bootstrap=stack_env["KAFKA_BOOTSTRAP"]),
        step=None,
        tracer_provider=make_tracer_provider("test", otlp_endpoint=None),
    )
    await bus.broker.start()
    try:
        await bus.broker.publish(
            b'{"slide_id": "' + str(slide_id).encode() + b'", "verdict": 42}',
            topic=str(Topic.SLIDES_QC),
            key=str(slide_id).encode(),
        )
    finally:
        await bus.broker.stop()


async def test_events_from_kafka_fill_the_rows_whatever_their_order(
    catalog: CatalogProcess, stack_env: dict[str, str]
) -> None:
    tenant = f"sp-{uuid4().hex[:8]}"
    in_order, shuffled = SlideEvents(tenant), SlideEvents(tenant)
    dead_letters = Collector(stack_env["KAFKA_BOOTSTRAP"], [dead_letter_topic("catalog")])
    await dead_letters.start()
    malformed_id = uuid4()
    try:
        await publish(
            stack_env,
            [
                *in_order.history(),
                # Out of order: the inference result and QC first, the upload last ...
                *reversed(shuffled.history()),
                # ... then each of its events once more, and an older QC than the stored one.
                *shuffled.history(),
                shuffled.qc(2, verdict="fail", blur=0.9, reasons=("old",)),
                # Another tenant naming the slide: refused, dead-lettered.
                SlideEvents("intruder", in_order.slide_id).qc(9, verdict="fail"),
            ],
        )
        await publish_malformed(stack_env, malformed_id)
        engine = catalog.engine()
        slide_ids = {in_order.slide_id, shuffled.slide_id}
        await wait_until(
            lambda: every_stage_projected(engine, slide_ids),
            what="both slides projected",
            timeout_s=STACK_WAIT_S,
        )
        await dead_letters.wait_for(
            lambda: (
                bool(dead_letters.of(malformed_id)) and bool(dead_letters.of(in_order.slide_id))
            ),
            timeout_s=STACK_WAIT_S,
            what="the malformed and the intruding event dead-lettered",
        )
    finally:
        await dead_letters.stop()

    first = generation_rows(engine, 1, {in_order.slide_id})
    second = generation_rows(engine, 1, {shuffled.slide_id})
    engine.dispose()
    assert stage_values(first) == stage_values(second), differing(first, second)
    [row] = first["search_slide"]
    assert (row["tenant"], row["organ"], row["scanner_vendor"], row["qc_verdict"]) == (
        tenant,
        "colon",
        "aperio",
        "warn",
    )
    assert (row["case_id"], row["converted_bytes"], row["level_count"]) == ("case-1a2b", 3000, 2)
    assert json.loads(row["qc_reasons_json"]) == ["blurry-region"]
    assert "tissue-classifier" in row["text"] and "tumour" in row["text"]
    assert sorted((m["name"], m["value"]) for m in first["search_measure"]) == [
        ("blur_fraction", 0.12),
        ("tissue_fraction", 0.4),
    ]
    assert sorted((s["output"], s["value"]) for s in first["search_score"]) == [
        ("fraction:stroma", 0.5),
        ("fraction:tumour", 0.35),
    ]
    reasons = {
        record.value["error_reason"]
        for slide_id in (malformed_id, in_order.slide_id)
        for record in dead_letters.of(slide_id)
        if record.value["service"] == "catalog"
    }
    assert reasons == {"invalid-event", "tenant-mismatch"}
    assert catalog.process is not None and catalog.process.poll() is None


async def test_reindex_rebuilds_the_live_generation_column_by_column(
    catalog: CatalogProcess, stack_env: dict[str, str]
) -> None:
    tenant = f"rx-{uuid4().hex[:8]}"
    slides = [SlideEvents(tenant) for _ in range(3)]
    rejected = SlideEvents(tenant)
    await publish(
        stack_env,
        [
            *(event for slide in slides for event in slide.history()),
            slides[0].inferred(6, version="2", summary={"fraction:tumour": 0.6}),
            # No stage event: no step of the stack reacts, so its state is ours alone.
            rejected.status(0, SlideState.UPLOADED, Step.UPLOAD),
            rejected.rejected(1),
        ],
    )
    engine = catalog.engine()
    slide_ids = {slide.slide_id for slide in slides}
    await wait_until(
        lambda: (
            every_stage_projected(engine, slide_ids)
            and [row["state"] for row in live_rows(engine, {rejected.slide_id})["search_slide"]]
            == ["rejected"]
        ),
        what="every slide projected",
        timeout_s=STACK_WAIT_S,
    )
    ours = {*slide_ids, rejected.slide_id}
    before = await quiet_rows(engine, ours)
    assert len(before["search_slide"]) == len(ours)

    # As an operator runs it: its own process, so no connection this test process holds (to
    # Milvus Lite, which closes channels that ping too often) is shared with it.
    result = await asyncio.to_thread(
        subprocess.run,
        [str(SLIDESTREAM), "admin", "reindex", "--json", "--env-file", str(catalog.env_file())],
        capture_output=True,
        text=True,
        timeout=REINDEX_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    store = SqlSearchStore(engine)
    assert summary["generation"] == store.generations().live == 2
    assert store.generations().building is None
    assert summary["events"] >= 4 * len(slides) and summary["seconds"] > 0

    assert generation_rows(engine, 2, ours) == before
    assert generation_rows(engine, 1) == {table: [] for table in before}
    # The service projects into the new live generation after the swap.
    late = SlideEvents(tenant)
    await publish(stack_env, [late.status(9, SlideState.UPLOADED, Step.UPLOAD, "late")])
    await wait_until(
        lambda: generation_rows(engine, 2, {late.slide_id})["search_slide"] != [],
        what="an event after the swap projected",
        timeout_s=STACK_WAIT_S,
    )
    [after] = generation_rows(engine, 2, {late.slide_id})["search_slide"]
    engine.dispose()
    assert (after["state"], after["detail"]) == ("uploaded", "late")

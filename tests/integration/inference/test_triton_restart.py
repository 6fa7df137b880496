"""Triton stopped while a slide is being analysed, then started again: the slide is not lost
(it reaches ``inferred``) and is announced once per (slide, model, version).

The model is slow on purpose (every batch sleeps) and the slide has about a thousand tiles, so
the run is still going when Triton stops. Triton runs in explicit model-control mode: after a
restart it serves nothing until the model the models API loaded is loaded again; the inference
service must see to that itself (a person would not be there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

from slidestream_contracts.events import SlideInferredV1, SlideStatusV1
from slidestream_contracts.states import SlideState
from slidestream_contracts.topics import Topic, dead_letter_topic
from slidestream_devstack import stack
from tests.support.inference_stack import (
    Janitor,
    create_tenant,
    make_slow_directory,
    paint_slide,
    slow_model_card,
    upload,
)
from tests.support.stack import Collector

pytestmark = pytest.mark.integration

DLQ_INFERENCE = dead_letter_topic("inference")
SECONDS_PER_BATCH = 0.1
"""About 125 batches of 8 tiles: a run of some 12 s, Triton stops a few batches in."""
BATCHES_BEFORE_STOP = 5
RECOVERY_TIMEOUT_S = 240.0


async def _poll(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def test_triton_stopped_mid_slide_then_restarted_loses_nothing_and_publishes_once(
    stack_env: dict[str, str], janitor: Janitor, tmp_path: Path
) -> None:
    name = janitor.model_name()
    folder = tmp_path / "slides"
    folder.mkdir()
    (tenant, token), directory, _ = await asyncio.gather(
        asyncio.to_thread(create_tenant, "it-restart"),
        asyncio.to_thread(
            make_slow_directory,
            tmp_path / "model",
            slow_model_card(name),
            seconds=SECONDS_PER_BATCH,
        ),
        asyncio.to_thread(paint_slide, folder / "many-tiles.tiff", seed=31),
    )
    janitor.client.push_path(directory)
    janitor.client.load(name)
    janitor.route(name, tenant)

    def executions() -> int:
        statistics = janitor.client.model(name).statistics
        return sum(entry.execution_count for entry in statistics)

    collector = Collector(
        stack_env["KAFKA_BOOTSTRAP"],
        (Topic.SLIDES_INFERRED.value, Topic.SLIDES_STATUS.value, DLQ_INFERENCE),
    )
    await collector.start()
    try:
        before = await asyncio.to_thread(executions)  # the canary's
        [slide] = (
            await asyncio.to_thread(upload, folder, api=stack_env["UPLOAD_API"], token=token)
        ).values()
        slide_id = UUID(slide)
        await _poll(
            lambda: executions() >= before + BATCHES_BEFORE_STOP,
            timeout_s=180.0,
            what="the slide's first batches in Triton",
        )
        try:
            await asyncio.to_thread(stack.down, ["triton"])
            assert collector.of(slide_id, Topic.SLIDES_INFERRED.value) == [], "ran too fast"
            await asyncio.sleep(2.0)  # the service meets Triton down
        finally:
            await asyncio.to_thread(stack.up, ["triton"])

        def settled() -> bool:
            dead = [
                r
                for r in collector.records
                if r.topic == DLQ_INFERENCE and r.value.get("slide_id") == slide
            ]
            return bool(collector.of(slide_id, Topic.SLIDES_INFERRED.value) or dead)

        await collector.wait_for(
            settled, timeout_s=RECOVERY_TIMEOUT_S, what="slides.inferred.v1 after the restart"
        )
        await collector.settle(3.0)
    finally:
        await collector.stop()

    dead_letters = [
        f"{d.get('error_reason')} after {d.get('attempts')} attempts: {d.get('error_message')}"
        for d in (r.value for r in collector.records if r.topic == DLQ_INFERENCE)
        if d.get("slide_id") == slide
    ]
    assert dead_letters == [], "the slide was dead-lettered, not retried until Triton was back"
    inferred = [
        SlideInferredV1.model_validate(r.value)
        for r in collector.of(slide_id, Topic.SLIDES_INFERRED.value)
    ]
    assert [(i.model_name, i.model_version) for i in inferred] == [(name, "1")]
    assert inferred[0].tile_count > 8 * BATCHES_BEFORE_STOP
    states = [
        SlideStatusV1.model_validate(r.value).state
        for r in collector.of(slide_id, Topic.SLIDES_STATUS.value)
    ]
    assert states.count(SlideState.INFERRED) == 1, states
    assert SlideState.FAILED_INFERENCE not in states, states

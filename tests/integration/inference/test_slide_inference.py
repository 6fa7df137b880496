"""Slides through the running stack into inference, with a real TorchScript model in the real
Triton: uploaded with the partner CLI, judged by QC, analysed by every routed model.

* a routed tenant's slide → ``slides.inferred.v1`` whose scores (the heat maps' numbers) and
  embeddings are the model's outputs run directly in torch on the same tiles;
* a tenant without models: its slides reach QC and nothing more (no event, no object, no
  dead letter);
* backfill: a slide QC judged before the route existed, run by ``slidestream models backfill``;
* redelivery: the same ``slides.qc.v1`` published again is acknowledged without a second
  ``slides.inferred.v1``.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from aiokafka import AIOKafkaProducer

from slidestream_contracts.events import SlideInferredV1, SlideQcV1, SlideStatusV1
from slidestream_contracts.model_card import ModelCardV1
from slidestream_contracts.states import SlideState
from slidestream_contracts.topics import Topic, dead_letter_topic
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from tests.support.inference_stack import (
    Janitor,
    ModelsApi,
    create_tenant,
    make_tile_net,
    models_cli,
    paint_slide,
    read_npz,
    read_verified,
    run_reference,
    tile_net_card,
    tiles_the_service_read,
    upload,
    wait_consumed,
)
from tests.support.stack import Collector, Record

pytestmark = pytest.mark.integration

DLQ_INFERENCE = dead_letter_topic("inference")
TOPICS = (
    Topic.SLIDES_QC.value,
    Topic.SLIDES_INFERRED.value,
    Topic.SLIDES_STATUS.value,
    DLQ_INFERENCE,
)
PROBABILITY_ATOL = 1e-4
"""float32 probabilities: Triton's batches and the direct run differ only in summation order."""
EMBEDDING_ATOL = 1e-3
"""float16 embeddings of tanh features in [-1, 1]: half precision rounds by at most 4.9e-4."""
PIPELINE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Slides:
    collector: Collector
    bootstrap: str
    model: str
    model_pt: Path
    card: ModelCardV1
    modelless_tenant: str
    modelless: UUID
    """QC judged it while its tenant had no model: nothing ran."""
    backfilled: UUID
    """The same tenant's second slide, for the backfill."""
    routed_tenant: str
    routed: UUID
    """Uploaded after the model was routed to its tenant: analysed."""

    def one(self, slide_id: UUID, topic: str) -> Record:
        [record] = self.collector.of(slide_id, topic)
        return record

    def inferred(self, slide_id: UUID) -> list[SlideInferredV1]:
        return [
            SlideInferredV1.model_validate(r.value)
            for r in self.collector.of(slide_id, Topic.SLIDES_INFERRED.value)
        ]

    def inferred_statuses(self, slide_id: UUID) -> list[SlideStatusV1]:
        statuses = (
            SlideStatusV1.model_validate(r.value)
            for r in self.collector.of(slide_id, Topic.SLIDES_STATUS.value)
        )
        return [s for s in statuses if s.state == SlideState.INFERRED]

    def dead_letters(self, slide_id: UUID) -> list[Record]:
        return [
            r
            for r in self.collector.records
            if r.topic == DLQ_INFERENCE and r.value.get("slide_id") == str(slide_id)
        ]


@pytest.fixture(scope="module")
async def slides(
    stack_env: dict[str, str],
    models_api: ModelsApi,
    janitor: Janitor,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Slides]:
    root = tmp_path_factory.mktemp("inference-slides")
    bootstrap = stack_env["KAFKA_BOOTSTRAP"]
    collector = Collector(bootstrap, TOPICS)
    await collector.start()
    try:
        name = janitor.model_name()
        card = tile_net_card(name)
        (root / "modelless").mkdir()
        (root / "routed").mkdir()
        (
            (modelless_tenant, modelless_token),
            (routed_tenant, routed_token),
            model_pt,
            *_,
        ) = await asyncio.gather(
            asyncio.to_thread(create_tenant, "it-nomodel"),
            asyncio.to_thread(create_tenant, "it-routed"),
            asyncio.to_thread(make_tile_net, root / "model", card, seed=7),
            asyncio.to_thread(paint_slide, root / "modelless" / "first.tiff", seed=21),
            asyncio.to_thread(paint_slide, root / "modelless" / "second.tiff", seed=22),
            asyncio.to_thread(paint_slide, root / "routed" / "routed.tiff", seed=23),
        )
        janitor.client.push_path(model_pt)
        janitor.client.load(name)
        janitor.route(name, routed_tenant)
        api = stack_env["UPLOAD_API"]
        modelless, routed = await asyncio.gather(
            asyncio.to_thread(upload, root / "modelless", api=api, token=modelless_token),
            asyncio.to_thread(upload, root / "routed", api=api, token=routed_token),
        )
        ids = {name: UUID(slide_id) for name, slide_id in (modelless | routed).items()}
        found = Slides(
            collector=collector,
            bootstrap=bootstrap,
            model=name,
            model_pt=model_pt,
            card=ModelCardV1.model_validate(card),
            modelless_tenant=modelless_tenant,
            modelless=ids["first.tiff"],
            backfilled=ids["second.tiff"],
            routed_tenant=routed_tenant,
            routed=ids["routed.tiff"],
        )
        await collector.wait_for(
            lambda: (
                all(collector.of(i, Topic.SLIDES_QC.value) for i in ids.values())
                and bool(found.inferred(found.routed) or found.dead_letters(found.routed))
            ),
            timeout_s=PIPELINE_TIMEOUT_S,
            what="QC of every slide and inference of the routed one",
        )
        for slide_id in (found.modelless, found.backfilled):
            qc = found.one(slide_id, Topic.SLIDES_QC.value)
            await wait_consumed(bootstrap, qc.topic, qc.partition, qc.offset)
        yield found
    finally:
        await collector.stop()


def _card_input(tiles: npt.NDArray[np.uint8], card: ModelCardV1) -> npt.NDArray[np.float32]:
    """The model card's input, written out here: NCHW float32 in ``channel_order``,
    ``(pixel / 255 - mean) / std``."""
    channels = tiles[..., ::-1] if card.input.channel_order == "BGR" else tiles
    mean = np.asarray(card.input.mean, np.float32)
    std = np.asarray(card.input.std, np.float32)
    scaled = (channels.astype(np.float32) / np.float32(255.0) - mean) / std
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


async def test_a_routed_slide_is_analysed_as_the_model_run_directly_in_torch(
    slides: Slides, store: MinioObjectStore, tmp_path: Path
) -> None:
    assert not slides.dead_letters(slides.routed)
    [inferred] = slides.inferred(slides.routed)
    qc = SlideQcV1.model_validate(slides.one(slides.routed, Topic.SLIDES_QC.value).value)
    assert qc.verdict in ("pass", "warn")
    card = slides.card
    assert (inferred.model_name, inferred.model_version) == (card.name, card.version)
    assert inferred.tenant == slides.routed_tenant
    prefix = f"{slides.routed_tenant}/{slides.routed}/inference/{card.name}/{card.version}/"
    assert all(ref.key.startswith(prefix) for ref in inferred.outputs)
    assert inferred.scores is not None and inferred.embeddings is not None
    assert inferred.slide_embedding is not None
    summary = json.loads(
        read_verified(store, next(r for r in inferred.outputs if r.key.endswith("json")))
    )
    scores = read_npz(read_verified(store, inferred.scores))
    embeddings = read_npz(read_verified(store, inferred.embeddings))
    assert list(scores["labels"]) == ["tumour", "stroma", "background"]
    assert np.array_equal(embeddings["origins_px"], scores["origins_px"])
    assert embeddings["embeddings"].dtype == np.float16
    assert inferred.tile_count == len(scores["origins_px"]) == summary["tile_count"] > 20

    tiles = await asyncio.to_thread(
        tiles_the_service_read, store, qc, scores, summary["level"], card, tmp_path
    )
    probabilities, features = await asyncio.to_thread(
        run_reference, slides.model_pt, _card_input(tiles, card), tmp_path
    )
    np.testing.assert_allclose(
        scores["probabilities"], probabilities, rtol=0, atol=PROBABILITY_ATOL
    )
    np.testing.assert_allclose(
        embeddings["embeddings"].astype(np.float32), features, rtol=0, atol=EMBEDDING_ATOL
    )
    slide_embedding = np.load(io.BytesIO(read_verified(store, inferred.slide_embedding)))
    # The mean of the answered (float16) tile embeddings: the reference rounded as Triton's.
    answered = features.astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(slide_embedding, answered.mean(axis=0), rtol=0, atol=1e-5)
    for index, label in enumerate(["tumour", "stroma", "background"]):
        column = probabilities[:, index]
        assert inferred.summary[f"mean:{label}"] == pytest.approx(column.mean(), abs=1e-5)
        assert inferred.summary[f"max:{label}"] == pytest.approx(column.max(), abs=PROBABILITY_ATOL)

    # One heat map per class, over the thumbnail.
    names = sorted(ref.key.rsplit("/", 1)[-1] for ref in inferred.heatmaps)
    assert names == ["heatmap-background.png", "heatmap-stroma.png", "heatmap-tumour.png"]
    for ref in inferred.heatmaps:
        picture = cv2.imdecode(np.frombuffer(read_verified(store, ref), np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None and max(picture.shape[:2]) >= 256
    [status] = slides.inferred_statuses(slides.routed)
    assert status.tenant == slides.routed_tenant


async def test_a_tenant_without_models_stops_at_qc_without_a_trace_of_inference(
    slides: Slides, store: MinioObjectStore
) -> None:
    # The fixture waited until inference acknowledged the slide's QC event.
    slide_id = slides.modelless
    qc = SlideQcV1.model_validate(slides.one(slide_id, Topic.SLIDES_QC.value).value)
    assert qc.verdict in ("pass", "warn")
    assert slides.inferred(slide_id) == []
    assert slides.inferred_statuses(slide_id) == []
    assert slides.dead_letters(slide_id) == []
    statuses = [r.value["state"] for r in slides.collector.of(slide_id, Topic.SLIDES_STATUS.value)]
    assert not any("inference" in state for state in statuses), statuses
    prefix = f"{slides.modelless_tenant}/{slide_id}/inference/"
    assert list(store.list("derived", prefix)) == []


async def test_backfill_runs_a_model_on_a_slide_judged_before_its_route(
    slides: Slides, models_api: ModelsApi, janitor: Janitor, store: MinioObjectStore
) -> None:
    slide_id = slides.backfilled
    assert slides.inferred(slide_id) == []  # QC judged it while the tenant had no model
    janitor.route(slides.model, slides.modelless_tenant)
    backfill = await asyncio.to_thread(
        models_cli,
        models_api.token,
        models_api.url,
        "backfill",
        slides.model,
        "--slides",
        str(slide_id),
        "--poll-interval",
        "0.5",
        "--timeout",
        str(PIPELINE_TIMEOUT_S),
    )
    assert backfill.code == 0, backfill.stderr[-2000:]
    progress = backfill.last
    assert progress["outcome"] == "done", progress
    assert (progress["requested"], progress["done"], progress["failed"]) == (1, 1, 0)
    await slides.collector.wait_for(
        lambda: bool(slides.inferred(slide_id)), what="slides.inferred.v1 of the backfill"
    )
    [inferred] = slides.inferred(slide_id)
    assert inferred.model_name == slides.model and inferred.tile_count > 0
    prefix = f"{slides.modelless_tenant}/{slide_id}/inference/{slides.model}/1/"
    stored = {s.key.rsplit("/", 1)[-1] for s in store.list("derived", prefix)}
    assert {"scores.npz", "embeddings.npz", "slide-embedding.npy", "summary.json"} <= stored
    # Only the slide asked for: its neighbour stays without a run.
    assert slides.inferred(slides.modelless) == []
    assert slides.dead_letters(slide_id) == []


async def test_a_redelivered_qc_event_is_acknowledged_without_a_second_inferred_event(
    slides: Slides,
) -> None:
    original = slides.one(slides.routed, Topic.SLIDES_QC.value)
    assert len(slides.inferred(slides.routed)) == 1
    producer = AIOKafkaProducer(bootstrap_servers=slides.bootstrap, acks="all")
    await producer.start()
    try:
        sent: Any = await producer.send_and_wait(
            original.topic,
            original.raw,
            key=original.key.encode() if original.key else None,
            headers=[(name, value.encode()) for name, value in original.headers.items()],
        )
    finally:
        await producer.stop()
    assert sent.partition == original.partition
    await wait_consumed(slides.bootstrap, original.topic, sent.partition, sent.offset)
    await slides.collector.settle(2.0)
    assert len(slides.inferred(slides.routed)) == 1
    assert len(slides.inferred_statuses(slides.routed)) == 1
    assert slides.dead_letters(slides.routed) == []

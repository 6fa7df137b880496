"""The qc service on real Kafka, MinIO and PostgreSQL, fed by the real convert service: a
planted-truth slide is judged, only the needed levels are read, the report and pictures land in
``derived``, a failing slide stops with its reasons."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from slidestream_contracts.events import SlideConvertedV1, SlideQcV1, SlideStatusV1
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.topics import Topic
from slidestream_convert.main import create_app as create_convert_app
from slidestream_convert.settings import ConvertSettings
from slidestream_devstack import stack
from slidestream_platform.broker import ServiceBus, make_bus
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from slidestream_qc.main import create_app as create_qc_app
from slidestream_qc.settings import QcSettings
from slidestream_samples import painting
from tests.support.convert import deidentified_event
from tests.support.stack import Collector, commit_group_at_end, object_store

pytestmark = pytest.mark.integration

OUTPUT_TOPICS = (
    Topic.SLIDES_CONVERTED.value,
    Topic.SLIDES_QC.value,
    Topic.SLIDES_STATUS.value,
    "dlq.qc.v1",
)


@dataclass
class Pipeline:
    collector: Collector
    bus: ServiceBus
    store: MinioObjectStore
    tenant: str


@pytest.fixture(scope="module")
async def pipeline(stack_env: dict[str, str]) -> AsyncIterator[Pipeline]:
    bootstrap = stack_env["KAFKA_BOOTSTRAP"]
    await asyncio.to_thread(stack.down, ["convert", "qc"])
    common = {
        "kafka_bootstrap": bootstrap,
        "s3_endpoint": stack_env["S3_ENDPOINT"],
        "s3_access_key": stack_env["S3_ACCESS_KEY"],
        "s3_secret_key": stack_env["S3_SECRET_KEY"],
        "database_url": stack_env["POSTGRES_URL"],
        "log_json": False,
        "kafka_max_attempts": 2,
        "kafka_retry_backoff_initial_s": 0.2,
    }
    suffix = uuid4().hex[:8]
    convert_settings = ConvertSettings(kafka_consumer_group=f"convert-qc-test-{suffix}", **common)
    qc_settings = QcSettings(kafka_consumer_group=f"qc-test-{suffix}", **common)
    convert_app = create_convert_app(convert_settings)
    qc_app = create_qc_app(qc_settings)
    collector = Collector(bootstrap, OUTPUT_TOPICS)
    bus = make_bus(
        ServiceSettings(service_name="deid", kafka_bootstrap=bootstrap),
        step=Step.DEID,
        tracer_provider=make_tracer_provider("qc-test", otlp_endpoint=None),
    )
    await commit_group_at_end(
        bootstrap, f"convert-qc-test-{suffix}", Topic.SLIDES_DEIDENTIFIED.value
    )
    await commit_group_at_end(bootstrap, f"qc-test-{suffix}", Topic.SLIDES_CONVERTED.value)
    await collector.start()
    await bus.broker.start()
    try:
        async with (
            convert_app.router.lifespan_context(convert_app),
            qc_app.router.lifespan_context(qc_app),
        ):
            yield Pipeline(
                collector=collector,
                bus=bus,
                store=object_store(stack_env),
                tenant=f"t-qc-{suffix}",
            )
    finally:
        await bus.broker.stop()
        await collector.stop()
        await asyncio.to_thread(stack.up, ["convert", "qc"])


async def judged(pipeline: Pipeline, slide: Path) -> tuple[SlideConvertedV1, SlideQcV1]:
    event = deidentified_event(pipeline.store, pipeline.tenant, [slide], fmt="generic-tiff")
    await pipeline.bus.publisher.publish(event)
    collector = pipeline.collector
    await collector.wait_for(
        lambda: bool(collector.of(event.slide_id, Topic.SLIDES_QC.value)),
        timeout_s=240,
        what="slides.qc.v1",
    )
    [converted] = collector.of(event.slide_id, Topic.SLIDES_CONVERTED.value)
    [qc] = collector.of(event.slide_id, Topic.SLIDES_QC.value)
    return (
        SlideConvertedV1.model_validate(converted.value),
        SlideQcV1.model_validate(qc.value),
    )


async def test_a_clean_slide_passes_and_its_report_and_pictures_are_in_derived(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    slide = tmp_path / "clean.tiff"
    painted = painting.paint_tissue(seed=5)
    painting.write_tiff_pyramid(slide, painted.rgb, painted.mpp_um)
    converted, qc = await judged(pipeline, slide)
    assert qc.verdict in ("pass", "warn"), qc.reasons
    names = {m.name for m in qc.measures}
    assert {"tissue_fraction", "blur_fraction", "pen_fraction"} <= names
    assert qc.report is not None
    with pipeline.store.open_stream(qc.report.bucket, qc.report.key) as stream:
        report = json.loads(stream.read())
    assert report["schema_version"] == "qc-report.v1"
    total = sum(ref.size_bytes for ref in converted.dicom)
    assert report["total_bytes"] == total
    # This test slide is a 10x scan (1 µm/px at level 0), so level 0 is the focus level, read
    # by tissue tiles only; no level 0 is decoded whole. On a 40x slide focus reads a level
    # 16 times smaller (make bench-qc: < 10 % of the file).
    uses = {use["purpose"]: use["index"] for use in report["level_use"]}
    assert uses["focus"] == 0 != uses["analysis"]
    assert report["bytes_read"] < 0.75 * total
    overlay_names = {ref.key.rsplit("/", 1)[-1] for ref in qc.overlays}
    assert "report.html" in overlay_names
    assert any(name.endswith(".png") for name in overlay_names)
    for ref in qc.overlays:
        assert ref.key.startswith(f"{pipeline.tenant}/{qc.slide_id}/qc/")
        assert pipeline.store.stat(ref.bucket, ref.key) is not None


async def test_a_slide_without_tissue_fails_and_stops_with_its_reason(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    slide = tmp_path / "empty.tiff"
    painted = painting.paint_tissue(seed=6, empty=True)
    painting.write_tiff_pyramid(slide, painted.rgb, painted.mpp_um)
    _, qc = await judged(pipeline, slide)
    assert qc.verdict == "fail"
    assert any("tissue" in reason for reason in qc.reasons)
    collector = pipeline.collector
    await collector.wait_for(
        lambda: any(
            SlideStatusV1.model_validate(r.value).state == SlideState.QC_FAILED
            for r in collector.of(qc.slide_id, Topic.SLIDES_STATUS.value)
        ),
        what="status qc_failed",
    )

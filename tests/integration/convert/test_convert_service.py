"""The convert service on real Kafka, MinIO and PostgreSQL: outputs that open in independent
readers, exactly-once announcements (also when a conversion outlasts the poll interval),
dead letters for slides that cannot be converted."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import openslide
import pytest
from wsidicom import WsiDicom

import slidestream_samples as samples
from slidestream_contracts.events import SlideConvertedV1, SlideStatusV1
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.topics import Topic
from tests.support.convert import Deployment, deidentified_event

pytestmark = pytest.mark.integration

CONVERTED = Topic.SLIDES_CONVERTED.value
STATUS = Topic.SLIDES_STATUS.value


def download(deployment: Deployment, bucket: str, key: str, target: Path) -> Path:
    with deployment.store.open_stream(bucket, key) as stream:
        target.write_bytes(stream.read())
    return target


async def test_an_svs_becomes_dicom_and_tiff_that_independent_readers_open(
    deployment: Deployment, tmp_path: Path
) -> None:
    slide = samples.make_svs(tmp_path)
    event = deidentified_event(deployment.store, deployment.tenant, [slide.path])
    await deployment.publish(event)
    collector = deployment.collector
    await collector.wait_for(
        lambda: bool(collector.of(event.slide_id, CONVERTED)), what="slides.converted.v1"
    )
    [record] = collector.of(event.slide_id, CONVERTED)
    converted = SlideConvertedV1.model_validate(record.value)
    assert converted.tiff is not None and converted.dicom
    assert converted.levels[0].lossless_copy
    assert converted.levels[0].pixel_proof_sha256

    dicom_dir = tmp_path / "dicom"
    dicom_dir.mkdir()
    for ref in converted.dicom:
        assert ref.key.startswith(f"{deployment.tenant}/{event.slide_id}/dicom/")
        download(deployment, ref.bucket, ref.key, dicom_dir / ref.key.rsplit("/", 1)[-1])
    tiff_path = download(
        deployment, converted.tiff.bucket, converted.tiff.key, tmp_path / "slide.ome.tiff"
    )
    source = openslide.OpenSlide(slide.path)
    with WsiDicom.open(dicom_dir) as wsi:
        assert (wsi.size.width, wsi.size.height) == source.dimensions
        region = wsi.read_region((0, 0), 0, (256, 256))
        expected = source.read_region((0, 0), 0, (256, 256)).convert("RGB")
        assert np.array_equal(np.asarray(region.convert("RGB")), np.asarray(expected))
    with openslide.OpenSlide(tiff_path) as tiff:
        assert tiff.dimensions == source.dimensions
        assert tiff.level_count == len(converted.levels)
    source.close()

    await collector.wait_for(
        lambda: any(
            SlideStatusV1.model_validate(r.value).state == SlideState.CONVERTED
            for r in collector.of(event.slide_id, STATUS)
        ),
        what="status converted",
    )
    provenance = converted.provenance
    assert provenance is not None
    with deployment.store.open_stream(provenance.bucket, provenance.key) as stream:
        assert b'"input_sha256"' in stream.read()


async def test_a_conversion_longer_than_the_poll_interval_completes_exactly_once(
    deployment: Deployment, tmp_path: Path
) -> None:
    slide = samples.make_svs(tmp_path)
    event = deidentified_event(deployment.store, deployment.tenant, [slide.path])
    deployment.converter.slow.add(str(event.slide_id))
    deployment.converter.delay_s = deployment.max_poll_interval_s * 2.5
    await deployment.publish(event)
    collector = deployment.collector
    await collector.wait_for(
        lambda: bool(collector.of(event.slide_id, CONVERTED)),
        timeout_s=120,
        what="slides.converted.v1 after a long conversion",
    )
    # Long enough for a rebalance and a redelivery to show up if membership had been lost.
    await collector.settle(deployment.max_poll_interval_s + 4)
    assert len(collector.of(event.slide_id, CONVERTED)) == 1
    assert deployment.converter.calls.count(str(event.slide_id)) == 1
    redelivered = "redelivered slide already converted and announced"
    assert deployment.logs.count(redelivered, event.slide_id) == 0

    # And the consumer still works afterwards: the next slide goes through.
    follower = deidentified_event(deployment.store, deployment.tenant, [slide.path])
    await deployment.publish(follower)
    await collector.wait_for(
        lambda: bool(collector.of(follower.slide_id, CONVERTED)), what="the next slide"
    )


async def test_a_redelivered_event_is_not_announced_twice(
    deployment: Deployment, tmp_path: Path
) -> None:
    slide = samples.make_svs(tmp_path)
    event = deidentified_event(deployment.store, deployment.tenant, [slide.path])
    await deployment.publish(event)
    collector = deployment.collector
    await collector.wait_for(lambda: bool(collector.of(event.slide_id, CONVERTED)))
    await deployment.publish(event)  # a replay of the same fact
    await collector.wait_for(
        lambda: (
            deployment.logs.count(
                "redelivered slide already converted and announced", event.slide_id
            )
            == 1
        ),
        what="the replay to be consumed",
    )
    assert len(collector.of(event.slide_id, CONVERTED)) == 1
    assert deployment.converter.calls.count(str(event.slide_id)) == 1


async def test_a_corrupt_slide_is_dead_lettered_and_the_next_one_converts(
    deployment: Deployment, tmp_path: Path
) -> None:
    slide = samples.make_svs(tmp_path)
    broken = tmp_path / "broken.svs"
    data = slide.path.read_bytes()
    broken.write_bytes(data[: len(data) // 3])  # truncated mid-tiles
    bad = deidentified_event(deployment.store, deployment.tenant, [broken])
    good = deidentified_event(deployment.store, deployment.tenant, [slide.path])
    await deployment.publish(bad)
    await deployment.publish(good)
    collector = deployment.collector
    await collector.wait_for(
        lambda: bool(collector.of(bad.slide_id, "dlq.convert.v1")), what="the dead letter"
    )
    await collector.wait_for(
        lambda: any(
            SlideStatusV1.model_validate(r.value).state == SlideState.failed(Step.CONVERT)
            for r in collector.of(bad.slide_id, STATUS)
        ),
        what="failed:convert",
    )
    assert not collector.of(bad.slide_id, CONVERTED)
    assert not list(deployment.store.list("converted", f"{deployment.tenant}/{bad.slide_id}/"))
    await collector.wait_for(lambda: bool(collector.of(good.slide_id, CONVERTED)))


async def test_the_service_reports_ready_and_exposes_metrics(deployment: Deployment) -> None:
    transport = httpx.ASGITransport(app=deployment.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://convert") as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "slidestream_convert_seconds" in metrics

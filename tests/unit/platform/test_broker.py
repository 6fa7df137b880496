"""The bus ``make_bus`` wires, on FastStream's in-memory broker: an event naming an object
outside its own slide's ``<tenant>/<slide_id>/`` prefix is dead-lettered before its handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from faststream.kafka import TestKafkaBroker

from slidestream_contracts.events import (
    DeadLetterRecordV1,
    DeidAuditSummary,
    ObjectRef,
    SlideConvertedV1,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideFormat,
    SlideInferredV1,
    SlideQcV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.quarantine import slide_object_key
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.topics import Topic, dead_letter_topic
from slidestream_platform.broker import make_bus
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider

TENANT = "acme"
SLIDE = UUID("0193a0d6-0000-7000-8000-000000000001")
LEVEL = {
    "index": 0,
    "width_px": 100,
    "height_px": 100,
    "tile_size_px": 256,
    "compression": "jpeg",
    "lossless_copy": True,
}


def ref(key: str, bucket: str = "derived") -> ObjectRef:
    return ObjectRef(bucket=bucket, key=key, sha256="0" * 64, size_bytes=1)


def mine(artefact: str) -> str:
    return slide_object_key(TENANT, SLIDE, artefact)


def uploaded(key: str) -> SlideEvent:
    return SlideUploadedV1(
        slide_id=SLIDE,
        tenant=TENANT,
        original=ref(key, "quarantine"),
        manifest=ref(mine("manifest.json"), "quarantine"),
        container_format=SlideFormat.TIFF,
        upload_id="u-1",
    )


def deidentified(key: str) -> SlideEvent:
    return SlideDeidentifiedV1(
        slide_id=SLIDE,
        tenant=TENANT,
        artefacts=(ref(mine("slide.svs"), "deidentified"), ref(key, "deidentified")),
        format="aperio-svs",
        width_px=100,
        height_px=100,
        level_count=1,
        audit=DeidAuditSummary(software_version="1", key_version=1),
    )


def converted(key: str) -> SlideEvent:
    return SlideConvertedV1(
        slide_id=SLIDE, tenant=TENANT, tiff=ref(key, "converted"), levels=(LEVEL,)
    )


def qc(key: str) -> SlideEvent:
    return SlideQcV1(
        slide_id=SLIDE,
        tenant=TENANT,
        verdict="pass",
        tissue_mask=ref(mine("qc/tissue-mask.png")),
        dicom=(ref(mine("dicom/level-0.dcm"), "converted"), ref(key, "converted")),
    )


def inferred(key: str) -> SlideEvent:
    return SlideInferredV1(
        slide_id=SLIDE,
        tenant=TENANT,
        model_name="grey",
        model_version="1",
        heatmaps=(ref(key),),
    )


OTHER_SLIDE = UUID("0193a0d6-0000-7000-8000-000000000002")
FOREIGN = [
    pytest.param(uploaded, slide_object_key("globex", SLIDE, "original"), id="another-tenant"),
    pytest.param(
        deidentified, slide_object_key(TENANT, OTHER_SLIDE, "slide.svs"), id="another-slide"
    ),
    pytest.param(converted, mine(f"../{OTHER_SLIDE}/tiff/slide.ome.tiff"), id="dot-dot"),
    pytest.param(qc, mine("dicom\\..\\level-1.dcm"), id="backslash"),
    pytest.param(inferred, mine("inference/grey/1//heatmap.png"), id="empty-segment"),
    pytest.param(converted, f"{TENANT}/{SLIDE}", id="the-slide-folder-itself"),
]


class Consumer:
    """A service's bus on the in-memory broker: the handler's calls, its dead letters and the
    statuses it published."""

    def __init__(self, topic: Topic) -> None:
        settings = ServiceSettings(service_name="qc", kafka_max_attempts=1)
        provider = make_tracer_provider("test", otlp_endpoint=None)
        self.bus = make_bus(settings, step=Step.QC, tracer_provider=provider)
        self.handled: list[dict[str, Any]] = []
        self.dead_letters: list[DeadLetterRecordV1] = []
        self.statuses: list[SlideStatusV1] = []

        async def handler(body: dict[str, Any]) -> None:
            self.handled.append(body)

        async def on_dead_letter(record: DeadLetterRecordV1) -> None:
            self.dead_letters.append(record)

        async def on_status(status: SlideStatusV1) -> None:
            self.statuses.append(status)

        self.bus.subscribe(topic, handler)
        self.bus.broker.subscriber(dead_letter_topic("qc"))(on_dead_letter)
        self.bus.broker.subscriber(Topic.SLIDES_STATUS.value)(on_status)

    async def deliver(self, event: SlideEvent) -> None:
        async with TestKafkaBroker(self.bus.broker):
            await self.bus.publisher.publish(event)


@pytest.mark.parametrize(("build", "key"), FOREIGN)
async def test_an_event_naming_another_slides_object_never_reaches_its_handler(
    build: Callable[[str], SlideEvent], key: str
) -> None:
    event = build(key)
    consumer = Consumer(event.TOPIC)

    await consumer.deliver(event)

    assert consumer.handled == []
    [record] = consumer.dead_letters
    assert (record.error_reason, record.attempts, record.slide_id) == (
        "foreign-object-key",
        1,
        SLIDE,
    )
    assert key in record.error_message
    [status] = consumer.statuses
    assert (status.state, status.reason) == (SlideState.failed(Step.QC), "foreign-object-key")


@pytest.mark.parametrize(
    "build", [uploaded, deidentified, converted, qc, inferred], ids=lambda b: b.__name__
)
async def test_an_event_whose_objects_are_its_slides_reaches_its_handler(
    build: Callable[[str], SlideEvent],
) -> None:
    event = build(mine("nested/artefact.bin"))
    consumer = Consumer(event.TOPIC)

    await consumer.deliver(event)

    assert [body["slide_id"] for body in consumer.handled] == [str(SLIDE)]
    assert consumer.dead_letters == [] and consumer.statuses == []


def test_a_comma_separated_bootstrap_names_every_broker() -> None:
    """``KAFKA_BOOTSTRAP=a:9092,b:9092`` (Kafka's own convention) is two addresses: FastStream
    takes one string as one host, and a service of a multi-broker cluster could not start."""
    settings = ServiceSettings(
        service_name="deid", kafka_bootstrap="10.0.0.1:9092, 10.0.0.2:9092,10.0.0.3:9092"
    )
    bus = make_bus(
        settings, step=Step.DEID, tracer_provider=make_tracer_provider("t", otlp_endpoint=None)
    )
    assert bus.broker._connection_kwargs["bootstrap_servers"] == [
        "10.0.0.1:9092",
        "10.0.0.2:9092",
        "10.0.0.3:9092",
    ]

"""Poison messages: records no retry can make right, published straight onto the pipeline's
topics between the batch's good ones, and files that are no slide, uploaded with it.

Each has its own slide id (the record key), so the checks can demand that exactly these — and
no good slide — end in a dead letter, each once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from slidestream_contracts.envelope import envelope_for
from slidestream_contracts.events import (
    DeidAuditSummary,
    ObjectRef,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideFormat,
    SlideUploadedV1,
)
from slidestream_contracts.quarantine import slide_object_key
from slidestream_contracts.topics import Topic
from slidestream_devstack.asyncio_bridge import run_sync
from tests.support.faults.ledger import INJECTED_HEADER
from tests.support.hostile_files import truncated_copy

MISSING_SHA256 = "0" * 64


@dataclass(frozen=True, slots=True)
class Poison:
    name: str
    topic: str
    slide_id: str
    value: bytes
    headers: dict[str, str]
    expected: str
    """The terminal state it must reach: a dead letter of the step that consumes ``topic``."""


def _ref(bucket: str, tenant: str, slide_id: uuid.UUID, artefact: str) -> ObjectRef:
    key = slide_object_key(tenant, slide_id, artefact)
    return ObjectRef(bucket=bucket, key=key, sha256=MISSING_SHA256, size_bytes=1)


def _uploaded(tenant: str, slide_id: uuid.UUID, original: ObjectRef) -> SlideUploadedV1:
    return SlideUploadedV1(
        slide_id=slide_id,
        tenant=tenant,
        original=original,
        container_format=SlideFormat.TIFF,
        upload_id=f"poison-{slide_id}",
    )


def _event(name: str, event: SlideEvent, expected: str, body: bytes | None = None) -> Poison:
    headers = envelope_for(event, service="fault-suite").to_headers()
    value = body if body is not None else event.model_dump_json().encode()
    return Poison(name, event.TOPIC.value, str(event.slide_id), value, headers, expected)


def _missing_original(tenant: str, slide_id: uuid.UUID) -> Poison:
    event = _uploaded(tenant, slide_id, _ref("quarantine", tenant, slide_id, "original"))
    return _event("uploaded, its original missing", event, "failed:deid")


def _foreign_key(tenant: str, slide_id: uuid.UUID) -> Poison:
    elsewhere = _ref("quarantine", tenant, uuid.uuid4(), "original")
    return _event(
        "uploaded, naming another slide's object",
        _uploaded(tenant, slide_id, elsewhere),
        "failed:deid",
    )


def _unknown_field(tenant: str, slide_id: uuid.UUID) -> Poison:
    event = _uploaded(tenant, slide_id, _ref("quarantine", tenant, slide_id, "original"))
    body = event.model_dump_json()[:-1] + ', "surprise": true}'
    return _event("uploaded, with a field v1 does not have", event, "failed:deid", body.encode())


def _undecodable(topic: str, expected: str) -> Callable[[str, uuid.UUID], Poison]:
    def make(_tenant: str, slide_id: uuid.UUID) -> Poison:
        return Poison(
            f"not JSON on {topic}", topic, str(slide_id), b"\xff\x00 not json", {}, expected
        )

    return make


def _missing_artefact(tenant: str, slide_id: uuid.UUID) -> Poison:
    event = SlideDeidentifiedV1(
        slide_id=slide_id,
        tenant=tenant,
        artefacts=(_ref("deidentified", tenant, slide_id, "slide.tiff"),),
        format="tiff",
        width_px=1024,
        height_px=1024,
        level_count=1,
        mpp_x=0.5,
        mpp_y=0.5,
        audit=DeidAuditSummary(software_version="fault-suite", key_version=1),
    )
    return _event("deidentified, its artefact missing", event, "failed:convert")


MAKERS: tuple[Callable[[str, uuid.UUID], Poison], ...] = (
    _undecodable(Topic.SLIDES_UPLOADED.value, "failed:deid"),
    _unknown_field,
    _missing_original,
    _foreign_key,
    _missing_artefact,
    _undecodable(Topic.SLIDES_CONVERTED.value, "failed:qc"),
)


def poison_messages(tenant: str) -> list[Poison]:
    return [make(tenant, uuid.uuid4()) for make in MAKERS]


async def _publish(bootstrap: str, messages: list[Poison]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(
                message.topic,
                message.value,
                key=message.slide_id.encode(),
                headers=[
                    *((k, v.encode()) for k, v in message.headers.items()),
                    (INJECTED_HEADER, b"poison"),
                ],
            )
    finally:
        await producer.stop()


def publish(bootstrap: str, messages: list[Poison]) -> None:
    run_sync(_publish(bootstrap, messages))


def bad_files(folder: Path, truncated_from: Path) -> dict[str, Path]:
    """Files a partner might send by mistake, by the terminal state each must reach: a text
    file named like a slide (refused by the upload service) and a slide cut in half (dead-
    lettered by deid as truncated)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "not_a_slide.svs"
    text.write_text("A text file with a slide's extension.\n", encoding="utf-8")
    truncated = truncated_copy(truncated_from, folder / "truncated.tiff")
    return {"rejected:upload": text, "failed:deid": truncated}

"""Exactly one ``slides.uploaded.v1`` per upload, whatever dies when: tusd mid-PATCH, the upload
service mid-hook, and the publication window between Kafka's acknowledgement and our bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from slidestream_platform.broker import make_bus
from slidestream_platform.db import DatabaseSettings, make_engine
from slidestream_platform.decisions import DecisionPublisher
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.telemetry import make_tracer_provider
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.settings import UploadSettings
from slidestream_upload.workflow import EVENT_ID_NAMESPACE, UploadWorkflow
from tests.support.upload import (
    TUS,
    UploadDeployment,
    api,
    create,
    events_for,
    tiff_bytes,
    wait_state,
)

pytestmark = pytest.mark.integration

CHUNK_BYTES = 8 * 1024 * 1024
SLIDE_BYTES = 96 * 1024 * 1024


def big_tiff_like(path: Path) -> bytes:
    """A TIFF header followed by incompressible bytes: big enough that PATCHes take a while."""
    head = tiff_bytes(20)
    path.write_bytes(head + os.urandom(SLIDE_BYTES - len(head)))
    return path.read_bytes()


def patch_from(location: str, body: bytes, offset: int, *, stop_after: int | None = None) -> int:
    """PATCH ``body`` from ``offset`` in chunks; stop early after ``stop_after`` bytes."""
    headers = {**TUS, "Content-Type": "application/offset+octet-stream"}
    sent = 0
    while offset < len(body) and (stop_after is None or sent < stop_after):
        chunk = body[offset : offset + CHUNK_BYTES]
        response = httpx.patch(
            location, headers={**headers, "Upload-Offset": str(offset)}, content=chunk, timeout=60
        )
        assert response.status_code == 204, response.text
        offset += len(chunk)
        sent += len(chunk)
    return offset


async def test_tusd_killed_mid_patch_then_resumed(
    deployment: UploadDeployment, tmp_path: Path
) -> None:
    _tenant, token = deployment.create_tenant()
    body = big_tiff_like(tmp_path / "big.tiff")
    created = create(deployment, token, body)
    location, slide_id = created.headers["Location"], created.headers["Slidestream-Slide-Id"]
    patch_from(location, body, 0, stop_after=3 * CHUNK_BYTES)

    # Kill tusd while a PATCH is streaming: the request dies with it.
    headers = {**TUS, "Content-Type": "application/offset+octet-stream"}
    offset = int(httpx.head(location, headers=TUS).headers["Upload-Offset"])

    async def doomed_patch() -> None:
        async with httpx.AsyncClient(timeout=60) as client:

            async def slow_body():  # type: ignore[no-untyped-def]
                for start in range(offset, len(body), 1024 * 1024):
                    yield body[start : start + 1024 * 1024]
                    await asyncio.sleep(0.05)

            with contextlib.suppress(httpx.HTTPError):
                await client.patch(
                    location, headers={**headers, "Upload-Offset": str(offset)}, content=slow_body()
                )

    patching = asyncio.create_task(doomed_patch())
    await asyncio.sleep(0.5)
    deployment.kill_tusd()
    await patching
    deployment.start_tusd()

    resumed_at = int(httpx.head(location, headers=TUS).headers["Upload-Offset"])
    assert 0 < resumed_at < len(body)
    patch_from(location, body, resumed_at)
    wait_state(deployment, token, slide_id, {"published"})
    events = await events_for(
        deployment.stack_env["KAFKA_BOOTSTRAP"], "slides.uploaded.v1", slide_id
    )
    assert len(events) == 1
    assert events[0]["original"]["sha256"] == hashlib.sha256(body).hexdigest()


async def test_upload_service_killed_mid_hook_still_publishes_once(
    deployment: UploadDeployment, tmp_path: Path
) -> None:
    _tenant, token = deployment.create_tenant()
    body = big_tiff_like(tmp_path / "big2.tiff")
    created = create(deployment, token, body)
    location, slide_id = created.headers["Location"], created.headers["Slidestream-Slide-Id"]
    patch_from(location, body, 0)
    # post-finish arrived and verification (hashing ~100 MB from MinIO) is running: kill it.
    deadline = time.monotonic() + 10
    while api(deployment, token, f"/v1/uploads/{slide_id}").json()["received_bytes"] < len(body):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    deployment.kill_service()
    deployment.start_service()
    wait_state(deployment, token, slide_id, {"published"})
    events = await events_for(
        deployment.stack_env["KAFKA_BOOTSTRAP"], "slides.uploaded.v1", slide_id
    )
    assert len(events) == 1


async def test_crash_between_publish_and_bookkeeping_does_not_publish_twice(
    deployment: UploadDeployment,
) -> None:
    """Drive the workflow in-process and 'crash' right after Kafka acknowledged the event."""
    _tenant, token = deployment.create_tenant()
    body = tiff_bytes(21)
    # Create through tusd, but stop the deployment's service from finalizing: we do it here.
    deployment.kill_service()
    try:
        created = create(deployment, token, body)
    finally:
        pass
    assert created.status_code != 201  # tusd needs the hook receiver to admit an upload
    deployment.start_service()
    created = create(deployment, token, body)
    location, slide_id = created.headers["Location"], UUID(created.headers["Slidestream-Slide-Id"])
    deployment.kill_service()  # post-finish will not be answered: the upload stays unfinished
    patch_from(location, body, 0)

    settings = UploadSettings(**{k.lower(): v for k, v in deployment.service_env().items()})
    bus = make_bus(
        settings, step=None, tracer_provider=make_tracer_provider("t", otlp_endpoint=None)
    )
    uploads = UploadRepository(make_engine(DatabaseSettings(url=settings.database_url), "upload"))
    decisions = DecisionPublisher.for_bus(bus, EVENT_ID_NAMESPACE)

    class CrashAfterPublishError(Exception):
        pass

    class CrashingRepository(UploadRepository):
        def mark_published(self, slide_id: UUID) -> None:
            raise CrashAfterPublishError

    crashing = CrashingRepository(
        make_engine(DatabaseSettings(url=settings.database_url), "upload")
    )
    store = MinioObjectStore(settings.object_store)
    await bus.broker.start()
    try:
        first = UploadWorkflow(
            settings=settings,
            uploads=crashing,
            store=store,
            publisher=bus.publisher,
            decisions=decisions,
        )
        with pytest.raises(CrashAfterPublishError):
            await first.finalize(slide_id)
        row = uploads.upload(slide_id)
        assert row is not None and row.state == "publishing"
        second = UploadWorkflow(
            settings=settings,
            uploads=uploads,
            store=store,
            publisher=bus.publisher,
            decisions=decisions,
        )
        await second.finalize(slide_id)
    finally:
        await bus.broker.stop()
        deployment.start_service()
    row = uploads.upload(slide_id)
    assert row is not None and row.state == "published"
    events = await events_for(
        deployment.stack_env["KAFKA_BOOTSTRAP"], "slides.uploaded.v1", str(slide_id)
    )
    assert len(events) == 1

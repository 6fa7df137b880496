"""Abandoned uploads expire: after the TTL they are terminated and nothing stays in quarantine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.upload import (
    TUS,
    UploadDeployment,
    create,
    events_for,
    object_exists,
    tiff_bytes,
    wait_state,
)

pytestmark = pytest.mark.integration

TTL_S = 4.0


@pytest.fixture(scope="module")
def short_lived(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UploadDeployment]:
    deployment = UploadDeployment(
        stack_env=stack_env, workdir=tmp_path_factory.mktemp("expiry"), ttl_s=TTL_S, name="expiry"
    )
    deployment.start_service()
    deployment.start_tusd()
    try:
        yield deployment
    finally:
        deployment.stop()


async def test_an_abandoned_upload_expires_and_leaves_nothing(
    short_lived: UploadDeployment, tmp_path: Path
) -> None:
    tenant, token = short_lived.create_tenant()
    body = tiff_bytes(30) * 4
    created = create(short_lived, token, body)
    location, slide_id = created.headers["Location"], created.headers["Slidestream-Slide-Id"]
    response = httpx.patch(
        location,
        headers={**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        content=body[: len(body) // 3],
    )
    assert response.status_code == 204
    view = wait_state(short_lived, token, slide_id, {"expired"})
    assert view["reason"] == "expired"
    assert httpx.head(location, headers=TUS).status_code in (404, 410)
    key = f"{tenant}/{slide_id}/original"
    assert not any(object_exists(short_lived, k) for k in (key, f"{key}.info", f"{key}.part"))
    bootstrap = short_lived.stack_env["KAFKA_BOOTSTRAP"]
    assert (
        await events_for(bootstrap, "slides.uploaded.v1", slide_id, settle_s=0, timeout_s=3) == []
    )

"""The upload control path end to end: tus clients → tusd → hooks → Kafka, real servers only."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client

from slidestream_contracts.states import SlideState, Stage, WaitOutcome, wait_outcome
from slidestream_devstack.secret_files import read_secret
from tests.support.upload import (
    TUS,
    WAIT_S,
    UploadDeployment,
    api,
    create,
    events_for,
    object_exists,
    s3,
    tiff_bytes,
    wait_state,
)

pytestmark = pytest.mark.integration


def raw_upload(
    deployment: UploadDeployment, token: str, body: bytes, **meta: str
) -> tuple[str, str]:
    """Upload with plain HTTP tus requests, in two PATCHes with a HEAD between (resumption)."""
    created = create(deployment, token, body, **meta)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    slide_id = created.headers["Slidestream-Slide-Id"]
    half = len(body) // 2
    patch = {**TUS, "Content-Type": "application/offset+octet-stream"}
    first = httpx.patch(location, headers={**patch, "Upload-Offset": "0"}, content=body[:half])
    assert first.status_code == 204, first.text
    offset = int(httpx.head(location, headers=TUS).headers["Upload-Offset"])
    assert offset == half
    second = httpx.patch(
        location, headers={**patch, "Upload-Offset": str(offset)}, content=body[offset:]
    )
    assert second.status_code == 204, second.text
    return slide_id, location


async def test_raw_http_tus_upload_publishes_exactly_one_uploaded_event(
    deployment: UploadDeployment,
) -> None:
    tenant, token = deployment.create_tenant()
    body = tiff_bytes(1)
    slide_id, location = raw_upload(deployment, token, body, filename="case 1.tiff")
    assert f"/files/{tenant}/{slide_id}/original+" in location
    wait_state(deployment, token, slide_id, {"published"})

    uploaded = await events_for(
        deployment.stack_env["KAFKA_BOOTSTRAP"], "slides.uploaded.v1", slide_id
    )
    assert len(uploaded) == 1
    event = uploaded[0]
    assert event["tenant"] == tenant
    assert event["container_format"] == "tiff"
    assert event["original"] == {
        "bucket": "quarantine",
        "key": f"{tenant}/{slide_id}/original",
        "sha256": hashlib.sha256(body).hexdigest(),
        "size_bytes": len(body),
    }
    stored = s3(deployment).get_object("quarantine", f"{tenant}/{slide_id}/original").read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(body).digest()
    # The partner-facing state follows slides.status.v1.
    # (The stack's de-identification service may already have taken the slide further.)
    deadline = time.monotonic() + WAIT_S
    while True:
        view = api(deployment, token, f"/v1/slides/{slide_id}").json()
        state = SlideState(view["state"]) if view["state"] else None
        if state is not None and wait_outcome(state, Stage.UPLOADED) is WaitOutcome.REACHED:
            break
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.3)


async def test_tuspy_client_written_by_others_works(
    deployment: UploadDeployment, tmp_path: Path
) -> None:
    _tenant, token = deployment.create_tenant()
    path = tmp_path / "slide.tiff"
    path.write_bytes(tiff_bytes(2))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    client = tus_client.TusClient(deployment.tus_url, headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(
        str(path), chunk_size=256 * 1024, metadata={"filename": path.name, "sha256": digest}
    )
    uploader.upload()
    slide_id = uploader.url.split("/files/", 1)[1].split("/")[1]
    wait_state(deployment, token, slide_id, {"published"})
    events = await events_for(
        deployment.stack_env["KAFKA_BOOTSTRAP"], "slides.uploaded.v1", slide_id
    )
    assert [e["original"]["sha256"] for e in events] == [digest]


def test_creation_requires_a_valid_token(deployment: UploadDeployment) -> None:
    body = tiff_bytes(3)
    assert create(deployment, None, body).status_code == 401
    assert create(deployment, "ssk_not-a-real-token", body).status_code == 401
    refused = create(deployment, "ssk_not-a-real-token", body)
    assert json.loads(refused.text)["reason"] == "unauthorized"


def test_a_revoked_token_is_refused(deployment: UploadDeployment) -> None:
    tenant, token = deployment.create_tenant()
    assert api(deployment, token, "/v1/info").status_code == 200
    from slidestream_platform.db import DatabaseSettings, make_engine
    from slidestream_upload.adapters.repository import UploadRepository

    engine = make_engine(DatabaseSettings(url=deployment.service_env()["DATABASE_URL"]), "upload")
    repository = UploadRepository(engine)
    [token_row] = repository.tokens(tenant)
    assert repository.revoke_token(token_row.token_id)
    assert api(deployment, token, "/v1/info").status_code == 401
    assert create(deployment, token, tiff_bytes(4)).status_code == 401


@pytest.mark.parametrize(
    ("length", "meta", "status", "reason"),
    [
        (0, {}, 400, "empty-upload"),
        (21 * 1024**3, {}, 413, "too-large"),
        (None, {"sha256": "not-a-digest"}, 400, "bad-checksum"),
    ],
)
def test_creation_refusals_say_why(
    deployment: UploadDeployment, length: int | None, meta: dict[str, str], status: int, reason: str
) -> None:
    _tenant, token = deployment.create_tenant()
    response = create(deployment, token, tiff_bytes(5), length=length, **meta)
    assert response.status_code == status
    assert json.loads(response.text)["reason"] == reason


def test_upload_length_above_quota_is_refused(deployment: UploadDeployment) -> None:
    _tenant, token = deployment.create_tenant(quota_gib=1.0)
    response = create(deployment, token, b"x", length=2 * 1024**3)
    assert response.status_code == 413
    assert json.loads(response.text)["reason"] == "quota-exceeded"


def test_bytes_beyond_the_declared_length_are_refused(deployment: UploadDeployment) -> None:
    _tenant, token = deployment.create_tenant()
    body = tiff_bytes(6)
    created = create(deployment, token, body)
    location = created.headers["Location"]
    slide_id = created.headers["Slidestream-Slide-Id"]
    response = httpx.patch(
        location,
        headers={**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        content=body + b"extra bytes beyond Upload-Length",
    )
    assert response.status_code == 413
    assert api(deployment, token, f"/v1/uploads/{slide_id}").json()["state"] == "receiving"


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("slide\x00.svs", "slide.svs"),
        ("report\u202eslm.svs", "reportslm.svs"),
    ],
)
def test_client_file_names_are_sanitised_and_never_become_keys(
    deployment: UploadDeployment, filename: str, stored: str
) -> None:
    tenant, token = deployment.create_tenant()
    slide_id, _ = raw_upload(deployment, token, tiff_bytes(7), filename=filename)
    view = wait_state(deployment, token, slide_id, {"published"})
    assert view["filename"] == stored
    assert object_exists(deployment, f"{tenant}/{slide_id}/original")


def _zip_with(member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, b"\x00" * 16)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "declared_sha", "reason"),
    [
        (b"%PDF-1.7 this is not a slide" * 10, None, "unsupported-format"),
        (tiff_bytes(8), "0" * 64, "checksum-mismatch"),
        (_zip_with("../../evil.dcm"), None, "archive-path-traversal"),
    ],
)
async def test_completed_bad_uploads_are_rejected_and_removed(
    deployment: UploadDeployment, body: bytes, declared_sha: str | None, reason: str
) -> None:
    tenant, token = deployment.create_tenant()
    meta = {"filename": "renamed.svs"}
    if declared_sha is not None:
        meta["sha256"] = declared_sha
    slide_id, _ = raw_upload(deployment, token, body, **meta)
    view = wait_state(deployment, token, slide_id, {"rejected"})
    assert view["reason"] == reason
    bootstrap = deployment.stack_env["KAFKA_BOOTSTRAP"]
    rejected = await events_for(bootstrap, "slides.rejected.v1", slide_id)
    assert [(e["reason"], e["step"]) for e in rejected] == [(reason, "upload")]
    assert (
        await events_for(bootstrap, "slides.uploaded.v1", slide_id, settle_s=0, timeout_s=3) == []
    )
    assert not object_exists(deployment, f"{tenant}/{slide_id}/original")


def test_other_tenants_cannot_see_or_cancel_an_upload(deployment: UploadDeployment) -> None:
    _a, token_a = deployment.create_tenant()
    _b, token_b = deployment.create_tenant()
    body = tiff_bytes(9)
    created = create(deployment, token_a, body)
    slide_id = created.headers["Slidestream-Slide-Id"]
    location = created.headers["Location"]
    assert api(deployment, token_a, f"/v1/uploads/{slide_id}").status_code == 200
    assert api(deployment, token_b, f"/v1/uploads/{slide_id}").status_code == 404
    assert api(deployment, token_b, f"/v1/slides/{slide_id}").status_code == 404
    refused = httpx.delete(location, headers={**TUS, "Authorization": f"Bearer {token_b}"})
    assert refused.status_code == 404
    allowed = httpx.delete(location, headers={**TUS, "Authorization": f"Bearer {token_a}"})
    assert allowed.status_code == 204
    wait_state(deployment, token_a, slide_id, {"terminated"})


def test_batches_reconcile_the_manifest_with_what_arrived(deployment: UploadDeployment) -> None:
    _tenant, token = deployment.create_tenant()
    good, bad = tiff_bytes(10), tiff_bytes(11)
    manifest = (
        "filename,sha256,case_id,organ,stain,scanner\n"
        f"good.tiff,{hashlib.sha256(good).hexdigest()},CASE-77,colon,HE,GT450\n"
        f"bad.tiff,{'1' * 64},CASE-78,colon,HE,GT450\n"
        f"missing.tiff,{'2' * 64},CASE-79,colon,HE,GT450\n"
    )
    auth = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        f"{deployment.api}/v1/batches",
        headers={**auth, "Content-Type": "text/csv"},
        content=manifest,
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["batch_id"]
    for name, body in (("good.tiff", good), ("bad.tiff", bad), ("extra.tiff", tiff_bytes(12))):
        slide_id, _ = raw_upload(deployment, token, body, filename=name, batch_id=batch_id)
        wait_state(deployment, token, slide_id, {"published"})
    report = httpx.get(f"{deployment.api}/v1/batches/{batch_id}", headers=auth).json()
    assert report["matched"] == ["good.tiff"]
    assert report["checksum_mismatch"] == ["bad.tiff"]
    assert report["missing"] == ["missing.tiff"]
    assert report["extra"] == ["extra.tiff"]
    assert report["complete"] is False
    bad_manifest = httpx.post(
        f"{deployment.api}/v1/batches",
        headers={**auth, "Content-Type": "text/csv"},
        content="filename\nx\n",
    )
    assert bad_manifest.status_code == 400
    assert "sha256" in bad_manifest.json()["message"]


def test_tokens_never_reach_the_logs(deployment: UploadDeployment) -> None:
    _tenant, token = deployment.create_tenant()
    raw_upload(deployment, token, tiff_bytes(13))
    api(deployment, token, "/v1/info")
    create(deployment, token + "x", tiff_bytes(14))
    time.sleep(1.0)
    logs = deployment.logs()
    assert "upload admitted" in logs  # the logs were written...
    assert token not in logs  # ...without the token
    assert token.removeprefix("ssk_") not in logs


def test_the_hooks_answer_tusd_alone_on_their_own_port(deployment: UploadDeployment) -> None:
    tenant, token = deployment.create_tenant()
    slide_id, _location = raw_upload(deployment, token, tiff_bytes(15))
    wait_state(deployment, token, slide_id, {"published"})  # tusd's hooks got through
    forged = {"Type": "post-finish", "Event": {"Upload": {"ID": f"{tenant}/{slide_id}/original"}}}
    on_partner_port = httpx.post(f"{deployment.api}/hooks/tusd", json=forged)
    assert on_partner_port.status_code == 404
    assert httpx.post(deployment.hooks_url, json=forged).status_code == 401
    as_partner = {"Authorization": f"Bearer {token}"}
    assert httpx.post(deployment.hooks_url, json=forged, headers=as_partner).status_code == 401
    wrong = ("tusd", "not-the-hooks-secret-" + "0" * 32)
    assert httpx.post(deployment.hooks_url, json=forged, auth=wrong).status_code == 403
    secret = read_secret(deployment.hooks_secret_file)
    assert secret not in deployment.logs()  # tusd would print its hook URL at start

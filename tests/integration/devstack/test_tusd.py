"""tusd from the devstack takes a resumable upload and stores it in MinIO's quarantine bucket."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from minio import Minio

pytestmark = pytest.mark.integration

TUS_VERSION = "1.0.0"
UPLOAD_BYTES = 6 * 1024 * 1024 + 12345
"""Over tusd's 5 MiB minimum S3 part, with a first half below it (stored as an incomplete part)."""
QUARANTINE_BUCKET = "quarantine"


def _metadata(**values: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


def partner_token() -> str:
    """A fresh tenant's token: tusd's pre-create hook (the upload service) admits only partners."""
    created = subprocess.run(
        [
            str(Path(sys.executable).parent / "slidestream"),
            "admin",
            "tenant",
            "create",
            f"devstack-{uuid4().hex[:8]}",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(created.stdout)["token"])


def test_resumable_upload_lands_in_quarantine(stack_env: dict[str, str]) -> None:
    # The payload starts like a TIFF so the upload service accepts it as a slide container.
    payload = b"II*\x00" + secrets.token_bytes(UPLOAD_BYTES - 4)
    half = UPLOAD_BYTES // 2
    token = partner_token()
    tus_headers = {"Tus-Resumable": TUS_VERSION, "Authorization": f"Bearer {token}"}
    patch_headers = {**tus_headers, "Content-Type": "application/offset+octet-stream"}

    with httpx.Client(timeout=30.0) as http:
        created = http.post(
            stack_env["TUS_URL"],
            headers={
                **tus_headers,
                "Upload-Length": str(UPLOAD_BYTES),
                # The upload service requires a declared sha256 (its pre-create hook).
                "Upload-Metadata": _metadata(
                    filename="slide.svs",
                    filetype="image/tiff",
                    sha256=hashlib.sha256(payload).hexdigest(),
                ),
            },
        )
        assert created.status_code == 201, created.text
        upload_url = str(httpx.URL(stack_env["TUS_URL"]).join(created.headers["Location"]))

        first = http.patch(
            upload_url, content=payload[:half], headers={**patch_headers, "Upload-Offset": "0"}
        )
        assert first.status_code == 204, first.text

        # A client that lost its connection asks where to resume.
        offset = int(http.head(upload_url, headers=tus_headers).headers["Upload-Offset"])
        assert offset == half

        rest = http.patch(
            upload_url,
            content=payload[offset:],
            headers={**patch_headers, "Upload-Offset": str(offset)},
        )
        assert rest.status_code == 204, rest.text
        assert int(rest.headers["Upload-Offset"]) == UPLOAD_BYTES

    # tusd's S3 upload id is "<object id>+<multipart id>"; the object is stored under the object
    # id, which the upload service chose: <tenant>/<slide id>/original.
    upload_id = upload_url.split("/files/", 1)[1]
    object_key = upload_id.split("+", 1)[0]
    assert object_key.endswith(f"/{created.headers['Slidestream-Slide-Id']}/original")
    s3 = Minio(
        httpx.URL(stack_env["S3_ENDPOINT"]).netloc.decode(),
        access_key=stack_env["S3_ACCESS_KEY"],
        secret_key=stack_env["S3_SECRET_KEY"],
        secure=False,
        region=stack_env["S3_REGION"],
    )
    response = s3.get_object(QUARANTINE_BUCKET, object_key)
    try:
        stored = response.read()
    finally:
        response.close()
        response.release_conn()
    assert len(stored) == UPLOAD_BYTES
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(payload).hexdigest()

"""tusd's hooks, as far as tokens go: an expired token cannot create an upload, and the
service's own termination token is recognised by a constant-time comparison."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.settings import UploadSettings
from tests.support.secrets import spy_compare_digest

METADATA = {"filename": "a.svs", "sha256": "0" * 64}
"""What a partner's client declares (a sha256 is required)."""


def hook(kind: str, token: str, **upload: Any) -> dict[str, Any]:
    return {
        "Type": kind,
        "Event": {
            "Upload": {"ID": "tus-1", "Size": 1000, "MetaData": METADATA, **upload},
            "HTTPRequest": {"Method": "POST", "Header": {"Authorization": [f"Bearer {token}"]}},
        },
    }


async def test_an_expired_token_cannot_create_an_upload(
    hooks: httpx.AsyncClient, uploads: UploadRepository
) -> None:
    issued = uploads.issue_token("acme", expires_at=datetime.now(UTC) - timedelta(minutes=1))

    answer = (await hooks.post("/hooks/tusd", json=hook("pre-create", issued.token))).json()

    assert answer["RejectUpload"] is True
    assert answer["HTTPResponse"]["StatusCode"] == 401
    assert json.loads(answer["HTTPResponse"]["Body"])["reason"] == "token-expired"


async def test_a_live_token_still_creates_one(
    hooks: httpx.AsyncClient, uploads: UploadRepository
) -> None:
    issued = uploads.issue_token("acme", expires_at=datetime.now(UTC) + timedelta(minutes=1))

    answer = (await hooks.post("/hooks/tusd", json=hook("pre-create", issued.token))).json()

    assert answer["RejectUpload"] is False
    assert answer["ChangeFileInfo"]["ID"].startswith("acme/")


async def test_the_internal_termination_token_is_compared_with_compare_digest(
    hooks: httpx.AsyncClient, settings: UploadSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    internal = settings.tusd_internal_token.get_secret_value()
    calls = spy_compare_digest(monkeypatch)

    allowed = (await hooks.post("/hooks/tusd", json=hook("pre-terminate", internal))).json()
    refused = (await hooks.post("/hooks/tusd", json=hook("pre-terminate", internal + "x"))).json()

    assert allowed["RejectTermination"] is False
    assert refused["RejectTermination"] is True
    assert (internal, internal) in calls
    assert (internal + "x", internal) in calls

"""tusd's hooks, on the real upload app in-process: served on the internal hooks port only,
and only to a caller with the shared hooks secret (HTTP Basic, as tusd sends it)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from slidestream_platform.service import ServiceApp
from slidestream_platform.settings import SecretFileError
from slidestream_upload.adapters.tusd import HookEvent
from slidestream_upload.main import create_app
from slidestream_upload.settings import UploadSettings

SECRET = "0123456789abcdef0123456789abcdef-hooks"
HOOKS_PORT = 8190
PROGRESS = {
    "Type": "post-receive",
    "Event": {"Upload": {"ID": "alpha/0199/original+multipart", "Size": 10, "Offset": 5}},
}


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


TUSD = basic("tusd", SECRET)


@dataclass
class RecordingWorkflow:
    """The workflow's hook side, recording what reached it."""

    seen: list[str] = field(default_factory=list)

    async def post_receive(self, hook: HookEvent) -> None:
        self.seen.append(hook.upload.id)


def settings_with_secret(tmp_path: Path, secret: str = SECRET) -> UploadSettings:
    secret_file = tmp_path / "tusd-hooks-secret"
    secret_file.write_text(secret + "\n")
    return UploadSettings(
        data_dir=tmp_path, hooks_port=HOOKS_PORT, tusd_hooks_secret_file=secret_file
    )


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://upload")


@dataclass
class Upload:
    partner: httpx.AsyncClient
    hooks: httpx.AsyncClient
    workflow: RecordingWorkflow


@pytest.fixture
async def upload(tmp_path: Path) -> AsyncIterator[Upload]:
    app = create_app(settings_with_secret(tmp_path))
    assert isinstance(app, ServiceApp)
    workflow = RecordingWorkflow()
    app.state.workflow = workflow
    [hooks_app] = app.internal_apps.values()
    async with client(app) as partner, client(hooks_app) as hooks:
        yield Upload(partner, hooks, workflow)


async def test_the_hooks_are_served_on_the_hooks_port_and_not_on_the_partner_port(
    upload: Upload,
) -> None:
    on_partner_port = await upload.partner.post("/hooks/tusd", json=PROGRESS, headers=TUSD)
    assert on_partner_port.status_code == 404
    assert upload.workflow.seen == []

    on_hooks_port = await upload.hooks.post("/hooks/tusd", json=PROGRESS, headers=TUSD)
    assert on_hooks_port.status_code == 200, on_hooks_port.text
    assert upload.workflow.seen == ["alpha/0199/original+multipart"]


async def test_a_hook_without_tusds_credentials_is_refused_with_401(upload: Upload) -> None:
    partner_token = {"Authorization": "Bearer ssk_partner"}
    for headers in ({}, partner_token, {"Authorization": "Basic not-base64!"}):
        answer = await upload.hooks.post("/hooks/tusd", json=PROGRESS, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    assert upload.workflow.seen == []


async def test_a_hook_with_a_wrong_secret_is_refused_with_403(upload: Upload) -> None:
    for wrong in ("", SECRET[:-1], SECRET + "x", SECRET.upper()):
        answer = await upload.hooks.post("/hooks/tusd", json=PROGRESS, headers=basic("tusd", wrong))
        assert answer.status_code == 403
    assert upload.workflow.seen == []


async def test_the_hooks_port_serves_neither_the_partner_api_nor_the_api_description(
    upload: Upload,
) -> None:
    for path in ("/v1/info", "/openapi.json", "/docs", "/healthz"):
        assert (await upload.hooks.get(path, headers=TUSD)).status_code == 404


@pytest.mark.parametrize("secret", ["", "too-short"])
def test_the_service_does_not_start_without_a_usable_hooks_secret(
    tmp_path: Path, secret: str
) -> None:
    with pytest.raises(SecretFileError) as refused:
        create_app(settings_with_secret(tmp_path, secret))
    assert "too-short" not in str(refused.value)


def test_the_service_does_not_start_when_the_hooks_secret_file_is_missing(
    tmp_path: Path,
) -> None:
    settings = UploadSettings(data_dir=tmp_path, tusd_hooks_secret_file=tmp_path / "absent")
    with pytest.raises(SecretFileError):
        create_app(settings)


def test_the_hooks_port_must_not_be_the_partner_port(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="HOOKS_PORT"):
        UploadSettings(data_dir=tmp_path, http_port=8190, hooks_port=8190)

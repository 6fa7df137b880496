"""The models API over HTTP: routes, status codes, tokens and the one error shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from slidestream_contracts.events import InferenceRequestedV1
from slidestream_contracts.tokens import token_sha256
from slidestream_inference.adapters.tokens import TokenFile
from slidestream_inference.api import models_api
from slidestream_inference.models_admin import ModelsAdmin
from slidestream_modelrepo import pack_upload
from tests.support.fakes import RecordingPublisher
from tests.support.models_api import (
    TRITON_ENDPOINT,
    FakeSlideCatalogue,
    FakeTriton,
    model_card,
    torchscript_bytes,
)

READ_TOKEN, WRITE_TOKEN = "ssk_read-only", "ssk_read-write"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
TENANT = "lab-a"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    entries = [
        {"name": "viewer", "sha256": token_sha256(READ_TOKEN), "scopes": ["models:read"]},
        {
            "name": "ai-team",
            "sha256": token_sha256(WRITE_TOKEN),
            "scopes": ["models:read", "models:write"],
        },
    ]
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture
async def client(admin: ModelsAdmin, token_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(models_api(admin, TokenFile(token_file)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inference") as client:
        yield client


async def push(client: httpx.AsyncClient, version: str = "1", **changes: Any) -> httpx.Response:
    card = model_card(version=version, **changes)
    return await client.post(
        f"/v1/models/{card.name}/versions/{card.version}",
        headers=WRITE,
        data={"card": card.model_dump_json()},
        files={"archive": ("tissue.tar.gz", pack_upload(card, {"model.pt": torchscript_bytes()}))},
    )


def assert_error(response: httpx.Response, status: int, code: str) -> list[dict[str, str]]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "problems"}
    assert body["error"] == code
    assert body["message"]
    problems: list[dict[str, str]] = body["problems"]
    return problems


async def test_a_push_answers_201_with_the_files_then_409(client: httpx.AsyncClient) -> None:
    pushed = await push(client)

    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["name"] == "tissue"
    assert pushed.json()["version"] == "1"
    assert pushed.json()["files"][-1] == "tissue/1/card.json"
    assert_error(await push(client), 409, "version-exists")


async def test_an_invalid_push_answers_422_with_problems(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/models/tissue/versions/2",
        headers=WRITE,
        data={"card": "{}"},
        files={"archive": ("x.tar.gz", b"")},
    )
    wrong_path = await client.post(
        "/v1/models/other/versions/1",
        headers=WRITE,
        data={"card": model_card().model_dump_json()},
        files={"archive": ("x.tar.gz", b"")},
    )

    assert assert_error(response, 422, "invalid")
    assert [p["field"] for p in assert_error(wrong_path, 422, "invalid")] == ["name"]


async def test_tokens_are_checked_before_anything_else(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/v1/models")
    assert_error(anonymous, 401, "unauthenticated")
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    unknown = await client.get("/v1/models", headers={"Authorization": "Bearer x"})
    assert_error(unknown, 401, "unauthenticated")
    assert_error(await client.post("/v1/models/tissue/load", headers=READ), 403, "forbidden")
    assert_error(
        await client.put("/v1/routes/tissue", headers=READ, json={"tenant": TENANT}),
        403,
        "forbidden",
    )
    assert (await client.get("/v1/models", headers=READ)).json() == {"models": []}


async def test_a_push_without_a_token_is_refused_before_its_body_is_parsed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/models/tissue/versions/1",
        content=b"not multipart at all",
        headers={"Content-Type": "multipart/form-data; boundary=nothing"},
    )

    assert_error(response, 401, "unauthenticated")


async def test_load_status_and_unload(client: httpx.AsyncClient, triton: FakeTriton) -> None:
    await push(client)

    loaded = await client.post("/v1/models/tissue/load", headers=WRITE)
    status = await client.get("/v1/models/tissue", headers=READ)
    listed = await client.get("/v1/models", headers=READ)
    unloaded = await client.post("/v1/models/tissue/unload", headers=WRITE)

    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["state"] == "READY"
    assert loaded.json()["canary"]["outputs"] == {"PROBS": [1, 4], "EMBED": [1, 16]}
    detail = status.json()
    assert set(detail) == {"name", "versions", "statistics", "loaded_at"}
    version = detail["versions"][0]
    assert set(version) == {"version", "state", "reason", "device", "card", "replicas"}
    assert version["device"] == "cpu"
    assert version["replicas"] == [{"endpoint": TRITON_ENDPOINT, "state": "READY", "reason": ""}]
    assert loaded.json()["replicas"] == {TRITON_ENDPOINT: loaded.json()["canary"]}
    assert set(detail["statistics"][0]) == {
        "version",
        "inference_count",
        "execution_count",
        "queue_ms_mean",
        "compute_ms_mean",
    }
    assert listed.json()["models"][0]["versions"][0]["state"] == "READY"
    assert unloaded.json() == {"name": "tissue", "state": "UNLOADED"}


async def test_a_lying_model_answers_422_and_triton_down_503(
    client: httpx.AsyncClient, triton: FakeTriton
) -> None:
    await push(client)
    triton.lies["EMBED"] = (1, 8)

    lied = await client.post("/v1/models/tissue/load", headers=WRITE)
    assert_error(lied, 422, "canary-failed")
    assert "EMBED" in lied.json()["message"]
    triton.down = True
    assert_error(await client.post("/v1/models/tissue/load", headers=WRITE), 503, "unavailable")
    assert_error(await client.post("/v1/models/nothing/load", headers=WRITE), 404, "not-found")


async def test_routes_are_put_listed_and_deleted(client: httpx.AsyncClient) -> None:
    await push(client)
    body = {"tenant": TENANT, "project": None, "stain": "H&E", "min_qc": "warn", "version": None}

    put = await client.put("/v1/routes/tissue", headers=WRITE, json=body)
    listed = await client.get("/v1/routes", headers=READ)
    deleted = await client.delete("/v1/routes/tissue", headers=WRITE, params={"tenant": TENANT})

    assert put.status_code == 200, put.text
    assert {k: put.json()[k] for k in body} == body
    assert [route["name"] for route in listed.json()["routes"]] == ["tissue"]
    assert deleted.json() == {"name": "tissue", "tenant": TENANT, "deleted": 1}


async def test_a_malformed_route_names_the_field(client: httpx.AsyncClient) -> None:
    await push(client)

    response = await client.put(
        "/v1/routes/tissue", headers=WRITE, json={"tenant": "Not A Tenant", "min_qc": "fail"}
    )

    fields = {problem["field"] for problem in assert_error(response, 422, "invalid")}
    assert fields == {"body.tenant", "body.min_qc"}


async def test_a_backfill_answers_202_and_reports_progress(
    client: httpx.AsyncClient, catalogue: FakeSlideCatalogue, publisher: RecordingPublisher
) -> None:
    await push(client)
    slide = uuid4()
    catalogue.slides = [(slide, TENANT, None, None, "pass", datetime.now(UTC))]
    await client.put("/v1/routes/tissue", headers=WRITE, json={"tenant": TENANT, "min_qc": "pass"})

    started = await client.post(
        "/v1/models/tissue/backfill",
        headers=WRITE,
        json={"since": "2020-01-01", "slides": None, "version": None},
    )
    assert started.status_code == 202, started.text
    backfill_id = started.json()["backfill_id"]
    progress = await client.get(f"/v1/models/tissue/backfill/{backfill_id}", headers=READ)

    assert started.status_code == 202, started.text
    assert started.json()["requested"] == 1
    assert progress.json() == {"requested": 1, "done": 0, "failed": 0}
    [(event, _event_id)] = publisher.sent
    assert isinstance(event, InferenceRequestedV1)
    assert (event.slide_id, event.requested_by) == (slide, "ai-team")

"""The models API over HTTP: routes, status codes, tokens and the one error shape."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from slidestream_contracts.events import InferenceRequestedV1
from slidestream_contracts.tokens import token_sha256
from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.tokens import TokenFile
from slidestream_inference.adapters.triton import TritonUnavailableError
from slidestream_inference.api import embed_api, models_api
from slidestream_inference.domain.patches import MAX_PATCH_BYTES
from slidestream_inference.model_embedding import PatchEmbedder
from slidestream_inference.models_admin import ModelsAdmin
from slidestream_modelrepo import pack_upload
from tests.support.fakes import MemoryStore, RecordingPublisher
from tests.support.inference import FakeTriton as FakeTritonModels
from tests.support.inference import model_card as grey_card
from tests.support.inference import store_card
from tests.support.models_api import (
    TRITON_ENDPOINT,
    FakeSlideCatalogue,
    FakeTriton,
    model_card,
    torchscript_bytes,
)

READ_TOKEN, WRITE_TOKEN, EMBED_TOKEN = "ssk_read-only", "ssk_read-write", "ssk_embed"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
EMBED = {"Authorization": f"Bearer {EMBED_TOKEN}"}
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
        {"name": "catalog", "sha256": token_sha256(EMBED_TOKEN), "scopes": ["models:embed"]},
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


@pytest.fixture
def tritons() -> FakeTritonModels:
    return FakeTritonModels(ready={"grey": ("1",)})


@pytest.fixture
async def embedding(
    token_file: Path, tritons: FakeTritonModels
) -> AsyncIterator[httpx.AsyncClient]:
    """The embed route over a bucket holding ``grey`` (from the slide-run tests: a 3-wide
    embedding of 128 px tiles) and ``probs`` (no embedding output), both ready."""
    store = MemoryStore()
    store_card(store, grey_card())
    probs = {"name": "PROBS", "kind": "class_probabilities", "width": 2, "labels": ["a", "b"]}
    store_card(store, grey_card(name="probs", outputs=[probs]))
    tritons.ready["probs"] = ("1",)
    app = FastAPI()
    embedder = PatchEmbedder(bucket=ModelBucket(store, "models"), triton=tritons)
    app.include_router(embed_api(embedder, TokenFile(token_file)))
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


def png(side_px: int = 128, height_px: int | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side_px, height_px or side_px), (200, 120, 180)).save(buffer, format="PNG")
    return buffer.getvalue()


async def embed(
    client: httpx.AsyncClient,
    image: bytes,
    *,
    name: str = "grey",
    headers: dict[str, str] = EMBED,
    version: str | None = None,
) -> httpx.Response:
    data = {} if version is None else {"version": version}
    files = {"image": ("patch.png", image, "image/png")}
    return await client.post(f"/v1/models/{name}/embed", headers=headers, data=data, files=files)


async def test_an_embedding_answers_model_version_dimension_and_numbers(
    embedding: httpx.AsyncClient,
) -> None:
    response = await embed(embedding, png(), version="1")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model", "version", "dimension", "embedding"}
    assert (body["model"], body["version"], body["dimension"]) == ("grey", "1", 3)
    # The fake model's embedding is each channel's mean input: pixel / 255 (mean 0, std 1).
    assert body["embedding"] == pytest.approx([200 / 255, 120 / 255, 180 / 255], abs=1e-6)


async def test_embedding_needs_the_embed_scope_and_no_other_scope_grants_it(
    embedding: httpx.AsyncClient,
) -> None:
    assert_error(await embed(embedding, png(), headers={}), 401, "unauthenticated")
    assert_error(await embed(embedding, png(), headers=READ), 403, "forbidden")
    assert_error(await embed(embedding, png(), headers=WRITE), 403, "forbidden")
    assert (await embed(embedding, png())).status_code == 200


async def test_an_embed_token_opens_nothing_else(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/models", headers=EMBED), 403, "forbidden")
    assert_error(await client.post("/v1/models/tissue/load", headers=EMBED), 403, "forbidden")


async def test_embedding_refusals_answer_their_status_and_code(
    embedding: httpx.AsyncClient, tritons: FakeTritonModels
) -> None:
    assert_error(await embed(embedding, png(), name="nothing"), 404, "not-found")
    assert_error(await embed(embedding, png(), version="9"), 404, "not-found")
    assert_error(await embed(embedding, png(), name="probs"), 409, "no-embedding-output")
    too_wide = await embed(embedding, png(4097, 1))
    assert [p["field"] for p in assert_error(too_wide, 413, "too-large")] == ["image"]
    too_heavy = await embed(embedding, b"\x89PNG" + bytes(MAX_PATCH_BYTES))
    assert_error(too_heavy, 413, "too-large")
    not_image = await embed(embedding, b"%PDF-1.7 not an image")
    assert [p["field"] for p in assert_error(not_image, 422, "invalid")] == ["image"]
    bad_version = await embed(embedding, png(), version="v1")
    assert [p["field"] for p in assert_error(bad_version, 422, "invalid")] == ["body.version"]
    tritons.ready = {}
    assert_error(await embed(embedding, png()), 409, "not-loaded")
    tritons.ready = {"grey": ("1",)}
    tritons.failure = TritonUnavailableError("Triton at fake: connection refused")
    assert_error(await embed(embedding, png()), 503, "unavailable")

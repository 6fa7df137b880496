"""The similarity routes with in-memory ports: tenant isolation, planted tissue types, bad input,
crops, and a patch embedded through a fake models API (the real HTTP adapter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, File, Form, Header, HTTPException, UploadFile

from slidestream_catalog import similar_api
from slidestream_catalog.adapters.embedder import HttpEmbedder
from slidestream_catalog.adapters.similar_source import ModelRun
from slidestream_catalog.similar_search import SimilarSearch
from slidestream_catalog.vector_indexing import MosaicIndexer
from slidestream_contracts.events import SlideInferredV1
from slidestream_platform.errors import DependencyDownError
from tests.support.similar import (
    MemoryCrops,
    MemoryFiles,
    MemorySource,
    MemoryVectors,
    grid_tiles,
    pyramid,
    ref_for,
)

MODEL, VERSION, DIMENSION = "tile-embedding", "1", 16
TOKENS = {"token-a": "tenant-a", "token-b": "tenant-b"}
EMBED_TOKEN = "catalog-embed-token"


class Tenants:
    async def tenant_for(self, token: str) -> str | None:
        return TOKENS.get(token)


def tissue(kind: int, count: int, rng: np.random.Generator) -> np.ndarray:
    centre = np.zeros(DIMENSION, np.float32)
    centre[kind] = 1.0
    return centre + rng.normal(0, 0.1, (count, DIMENSION)).astype(np.float32)


def models_api() -> FastAPI:
    """The inference service's embed endpoint as the catalog sees it: type 2 for any patch."""
    app = FastAPI()

    @app.post("/v1/models/{model}/embed")
    async def embed(
        model: str,
        image: UploadFile = File(),  # noqa: B008 - FastAPI's declaration style
        version: str | None = Form(default=None),
        authorization: str = Header(default=""),
    ) -> dict[str, object]:
        if authorization != f"Bearer {EMBED_TOKEN}":
            raise HTTPException(401)
        if model != MODEL:
            raise HTTPException(404, detail="unknown model")
        assert (await image.read()).startswith(b"\x89PNG")
        vector = np.zeros(DIMENSION)
        vector[2] = 1.0
        return {
            "model": model,
            "version": version or VERSION,
            "dimension": DIMENSION,
            "embedding": vector.tolist(),
        }

    return app


class World:
    def __init__(self) -> None:
        self.source = MemorySource()
        self.files = MemoryFiles()
        self.vectors = MemoryVectors()
        self.crops = MemoryCrops()
        self.slides: dict[str, dict[int, list[UUID]]] = {}

    async def plant(self, tenant: str, kind: int, rng: np.random.Generator) -> UUID:
        slide = uuid4()
        key = f"{tenant}/{slide}/embeddings.npz"
        self.files.tiles_by_key[key] = grid_tiles(tissue(kind, 40, rng))
        run = ModelRun(slide, MODEL, VERSION, ref_for(key), None)
        self.source.add(tenant, run, pyramid(8 * 512, 5 * 512))
        event = SlideInferredV1(
            slide_id=slide,
            tenant=tenant,
            model_name=MODEL,
            model_version=VERSION,
            embeddings=ref_for(key),
        )
        await MosaicIndexer(self.files, self.vectors, mosaic_tiles=8).index_run(event, 1)
        self.slides.setdefault(tenant, {}).setdefault(kind, []).append(slide)
        return slide


@pytest.fixture
async def world() -> World:
    world = World()
    for tenant in ("tenant-a", "tenant-b"):
        rng = np.random.default_rng(7)  # identical content in both tenants
        for kind in range(5):
            for _ in range(12):
                await world.plant(tenant, kind, rng)
    return world


def similar_app(world: World, vectors: MemoryVectors, embedder: HttpEmbedder) -> FastAPI:
    app = FastAPI()
    app.include_router(similar_api.router)
    app.state.tenants = Tenants()
    app.state.similar = similar_api.SimilarServices(
        search=SimilarSearch(world.source, vectors, world.files),
        source=world.source,
        crops=world.crops,
        embedder=embedder,
    )
    return app


@pytest.fixture
async def models(tmp_path: Path) -> AsyncIterator[HttpEmbedder]:
    token_file = tmp_path / "embed-token"
    token_file.write_text(EMBED_TOKEN + "\n")
    transport = httpx.ASGITransport(app=models_api())
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as models:
        yield HttpEmbedder("http://m", token_file, models)


@pytest.fixture
async def client(world: World, models: HttpEmbedder) -> AsyncIterator[httpx.AsyncClient]:
    app = similar_app(world, world.vectors, models)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        yield c


def auth(token: str = "token-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_whole_slide_query_finds_its_tissue_type(
    client: httpx.AsyncClient, world: World
) -> None:
    for kind in range(5):
        query = world.slides["tenant-a"][kind][0]
        answer = await client.post(
            "/v1/similar", json={"slide_id": str(query), "k": 10}, headers=auth()
        )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found = [UUID(item["slide_id"]) for item in page["items"]]
        same_type = set(world.slides["tenant-a"][kind]) - {query}
        assert len(found) == 10
        assert set(found) <= same_type  # precision@10 = 1.0 for every planted type
        assert page["model"] == MODEL and page["model_version"] == VERSION


async def test_region_query_and_crop_url(client: httpx.AsyncClient, world: World) -> None:
    query = world.slides["tenant-a"][3][0]
    region = {"x": 0, "y": 0, "width": 256, "height": 128, "level": 1}  # level 1 is 4x smaller

    answer = await client.post(
        "/v1/similar", json={"slide_id": str(query), "region": region, "k": 5}, headers=auth()
    )

    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert {UUID(item["slide_id"]) for item in items} <= set(world.slides["tenant-a"][3])
    first = items[0]
    assert first["crop_url"] == (
        f"/v1/slides/{first['slide_id']}/crop?x={first['x']}&y={first['y']}&size=512"
    )
    crop = await client.get(first["crop_url"], headers=auth())
    assert crop.status_code == 200
    assert crop.headers["content-type"] == "image/png"
    assert world.crops.asked == [(first["x"], first["y"], 512)]


async def test_a_tenant_never_sees_the_other_tenants_slides(
    client: httpx.AsyncClient, world: World
) -> None:
    for token, tenant in TOKENS.items():
        own = {slide for slides in world.slides[tenant].values() for slide in slides}
        query = world.slides[tenant][1][0]
        answer = await client.post(
            "/v1/similar", json={"slide_id": str(query), "k": 100}, headers=auth(token)
        )
        assert {UUID(item["slide_id"]) for item in answer.json()["items"]} <= own
    other = world.slides["tenant-b"][1][0]
    answer = await client.post("/v1/similar", json={"slide_id": str(other)}, headers=auth())
    assert answer.status_code == 404
    crop = await client.get(f"/v1/slides/{other}/crop?x=0&y=0&size=512", headers=auth())
    assert crop.status_code == 404


async def test_patch_is_embedded_by_the_models_api(client: httpx.AsyncClient, world: World) -> None:
    answer = await client.post(
        "/v1/similar/patch",
        files={"image": ("p.png", b"\x89PNG patch", "image/png")},
        data={"model": MODEL, "k": "10"},
        headers=auth(),
    )

    assert answer.status_code == 200, answer.text
    found = {UUID(item["slide_id"]) for item in answer.json()["items"]}
    assert found <= set(world.slides["tenant-a"][2])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"model": "no-such-model"}, 422, "model"),
        ({"region": {"x": 5000, "y": 0, "width": 10, "height": 10}}, 422, "region"),
        ({"region": {"x": 0, "y": 0, "width": 10, "height": 10, "level": 9}}, 422, "region"),
        ({"k": 101}, 422, "k"),
    ],
)
async def test_bad_queries_name_their_field(
    client: httpx.AsyncClient, world: World, body: dict[str, object], status: int, field: str
) -> None:
    query = world.slides["tenant-a"][0][0]

    answer = await client.post("/v1/similar", json={"slide_id": str(query), **body}, headers=auth())

    assert answer.status_code == status
    assert field in answer.text


async def test_patch_with_unknown_model_or_version_is_refused(client: httpx.AsyncClient) -> None:
    files = {"image": ("p.png", b"\x89PNG patch", "image/png")}
    unknown = await client.post(
        "/v1/similar/patch", files=files, data={"model": "other"}, headers=auth()
    )
    never = await client.post(
        "/v1/similar/patch", files=files, data={"model": MODEL, "version": "7"}, headers=auth()
    )

    assert (unknown.status_code, unknown.json()["detail"]["field"]) == (404, "model")
    assert (never.status_code, never.json()["detail"]["field"]) == (422, "model")


async def test_crop_outside_the_slide_and_no_token(client: httpx.AsyncClient, world: World) -> None:
    slide = world.slides["tenant-a"][0][0]

    outside = await client.get(f"/v1/slides/{slide}/crop?x=4000&y=0&size=512", headers=auth())
    anonymous = await client.post("/v1/similar", json={"slide_id": str(slide)})

    assert (outside.status_code, outside.json()["detail"]["field"]) == (422, "size")
    assert anonymous.status_code == 401


class DownVectors(MemoryVectors):
    async def dimensions(self, model: str, version: str) -> tuple[int, ...]:
        raise DependencyDownError("Milvus: connection refused")


async def test_milvus_down_is_503(world: World, models: HttpEmbedder) -> None:
    app = similar_app(world, DownVectors(), models)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        answer = await c.post(
            "/v1/similar", json={"slide_id": str(world.slides["tenant-a"][0][0])}, headers=auth()
        )

    assert answer.status_code == 503
    assert answer.json()["detail"]["reason"] == "dependency-down"

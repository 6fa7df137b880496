"""Similarity of planted tissue types, end to end on real servers: tiles of the five tissue types
embedded by the REAL ``tile-embedding`` model on the stack's Triton, laid out as small slides
whose ``embeddings.npz`` lie in MinIO, indexed (mosaics) into a Milvus Lite server process, and
queried by whole slide and by region through :class:`SimilarSearch`.

Each slide is 16 tiles: 13 of its type, 3 of the others. 12 slides per type and tenant, so every
query has 11 slides of its type to find: precision@10 is the share of the top 10 of its type.
Both tenants hold identical slides; no answer may name the other tenant's.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import numpy as np
import pytest

from slidestream_catalog.adapters.embedding_files import StoredEmbeddingFiles
from slidestream_catalog.adapters.similar_source import ModelRun
from slidestream_catalog.adapters.vectors import MilvusVectorIndex
from slidestream_catalog.similar_search import SimilarSearch
from slidestream_catalog.vector_indexing import MosaicIndexer
from slidestream_contracts.embeddings import embeddings_npz_bytes
from slidestream_contracts.events import SlideInferredV1
from slidestream_contracts.search import Region, SimilarQuery
from tests.support.similar import MemorySource, grid_tiles, pyramid
from tests.support.stack import object_store
from tests.support.tissue_embeddings import EMBEDDING_MODEL, TissueTiles, embed_held_out_tiles

pytestmark = pytest.mark.integration

SLIDES_PER_TYPE = 12
OWN_TILES, OTHER_TILES = 13, 3
TENANTS = ("tenant-a", "tenant-b")
PRECISION_AT_10_MIN = 0.9
"""Stated goal per tissue type (measured: 1.0 for every type, slide and region queries)."""


@dataclass
class Planted:
    search: SimilarSearch
    tissue: TissueTiles
    kind_of: dict[UUID, int]
    tenant_of: dict[UUID, str]
    slides: dict[tuple[str, int], list[UUID]]


def slide_tiles(
    tissue: TissueTiles, kind: int, number: int, rng: np.random.Generator
) -> np.ndarray:
    own = np.flatnonzero(tissue.label == kind)
    start = (number * OWN_TILES) % max(len(own) - OWN_TILES, 1)
    others = rng.choice(np.flatnonzero(tissue.label != kind), OTHER_TILES, replace=False)
    return np.concatenate([own[start : start + OWN_TILES], others])


@pytest.fixture(scope="module")
async def planted(stack_env: dict[str, str], milvus_uri: str) -> AsyncIterator[Planted]:
    tissue = await embed_held_out_tiles(stack_env)
    store = object_store(stack_env)
    files = StoredEmbeddingFiles(store)
    vectors = MilvusVectorIndex(milvus_uri)
    source = MemorySource()
    indexer = MosaicIndexer(files, vectors, mosaic_tiles=8)
    kind_of: dict[UUID, int] = {}
    tenant_of: dict[UUID, str] = {}
    slides: dict[tuple[str, int], list[UUID]] = {}
    for tenant in TENANTS:
        rng = np.random.default_rng(15)  # the same slides in both tenants
        for kind in range(len(tissue.labels)):
            for number in range(SLIDES_PER_TYPE):
                slide = uuid4()
                tiles = grid_tiles(tissue.embeddings[slide_tiles(tissue, kind, number, rng)], 4)
                data = embeddings_npz_bytes(tiles)
                key = (
                    f"{tenant}/{slide}/inference/{EMBEDDING_MODEL}/{tissue.version}/embeddings.npz"
                )
                stored = await asyncio.to_thread(
                    store.put_stream, "derived", key, io.BytesIO(data), len(data)
                )
                ref = stored.to_event_ref()
                source.add(
                    tenant,
                    ModelRun(slide, EMBEDDING_MODEL, tissue.version, ref, None),
                    pyramid(4 * 512 * 4, 4 * 512 * 4),
                )
                event = SlideInferredV1(
                    slide_id=slide,
                    tenant=tenant,
                    model_name=EMBEDDING_MODEL,
                    model_version=tissue.version,
                    embeddings=ref,
                )
                await indexer.index_run(event, 1)
                kind_of[slide], tenant_of[slide] = kind, tenant
                slides.setdefault((tenant, kind), []).append(slide)
    yield Planted(SimilarSearch(source, vectors, files), tissue, kind_of, tenant_of, slides)
    vectors.close()


async def precision_by_type(planted: Planted, tenant: str, region: Region | None) -> list[float]:
    by_type = []
    for kind in range(len(planted.tissue.labels)):
        scores = []
        for slide in planted.slides[(tenant, kind)]:
            query = SimilarQuery(slide_id=slide, region=region, k=10)
            page = await planted.search.by_slide(tenant, query)
            assert {planted.tenant_of[item.slide_id] for item in page.items} == {tenant}
            assert slide not in {item.slide_id for item in page.items}
            scores.append(np.mean([planted.kind_of[item.slide_id] == kind for item in page.items]))
        by_type.append(float(np.mean(scores)))
    return by_type


@pytest.mark.parametrize("tenant", TENANTS)
async def test_whole_slide_queries_find_their_tissue_type(planted: Planted, tenant: str) -> None:
    precision = await precision_by_type(planted, tenant, None)

    print(dict(zip(planted.tissue.labels, precision, strict=True)))
    assert min(precision) >= PRECISION_AT_10_MIN, precision


async def test_region_queries_find_their_tissue_type(planted: Planted) -> None:
    # The slide's first row at level 1 (4x smaller): four tiles, all of its own type.
    region = Region(x=0, y=0, width=4 * 512 // 4, height=512 // 4, level=1)

    precision = await precision_by_type(planted, "tenant-a", region)

    print(dict(zip(planted.tissue.labels, precision, strict=True)))
    assert min(precision) >= PRECISION_AT_10_MIN, precision


async def test_region_results_point_at_tiles_of_the_type(planted: Planted) -> None:
    slide = planted.slides[("tenant-a", 2)][0]
    region = Region(x=0, y=0, width=512 // 4, height=512 // 4, level=1)

    page = await planted.search.by_slide("tenant-a", SimilarQuery(slide_id=slide, region=region))

    assert page.model == EMBEDDING_MODEL
    assert all(item.size_px == 512 and item.x % 512 == 0 for item in page.items)
    assert page.items[0].crop_url.startswith(f"/v1/slides/{page.items[0].slide_id}/crop?")

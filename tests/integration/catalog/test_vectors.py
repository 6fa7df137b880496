"""The Milvus adapter against a real Milvus Lite server: upsert, search, tenant isolation,
redelivery, generation swap."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import numpy as np
import pytest

from slidestream_catalog.adapters.vectors import IndexKey, MilvusVectorIndex, VectorRow
from slidestream_catalog.domain.mosaic import normalised
from slidestream_catalog.vector_indexing import MosaicIndexer
from tests.support.similar import MemoryFiles

pytestmark = pytest.mark.integration

DIMENSION = 64


@pytest.fixture
def index(milvus_uri: str) -> Iterator[MilvusVectorIndex]:
    client = MilvusVectorIndex(milvus_uri, nprobe=64)
    yield client
    client.close()


@pytest.fixture
def key() -> IndexKey:
    # A fresh collection per test: the model name is unique.
    return IndexKey(f"m-{uuid4().hex[:8]}", "1", DIMENSION)


def rows_for(tenant: str, slide: str, vectors: np.ndarray, generation: int) -> list[VectorRow]:
    return [
        VectorRow(tenant, slide, "tile", i, 224 * i, 0, 224, generation, vector)
        for i, vector in enumerate(normalised(vectors))
    ]


def random_vectors(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, DIMENSION)).astype(np.float32)


async def test_search_returns_only_the_callers_tenant(
    index: MilvusVectorIndex, key: IndexKey
) -> None:
    vectors = random_vectors(8, seed=1)
    slide_a, slide_b = str(uuid4()), str(uuid4())
    await index.upsert(key, rows_for("tenant-a", slide_a, vectors, 1))
    await index.upsert(key, rows_for("tenant-b", slide_b, vectors, 1))  # identical content

    for tenant, own in (("tenant-a", slide_a), ("tenant-b", slide_b)):
        answers = await index.search(
            key, normalised(vectors), tenant=tenant, generation=1, limit=10
        )
        assert [{hit.slide_id for hit in answer} for answer in answers] == [{own}] * 8
        assert all(answer[0].distance == pytest.approx(0.0, abs=1e-5) for answer in answers)


async def test_a_quote_in_the_tenant_cannot_widen_the_filter(
    index: MilvusVectorIndex, key: IndexKey
) -> None:
    vectors = random_vectors(4, seed=2)
    await index.upsert(key, rows_for("tenant-a", str(uuid4()), vectors, 1))

    hostile = 'x" || tenant != "x'
    answers = await index.search(key, normalised(vectors), tenant=hostile, generation=1, limit=10)

    assert answers == [[], [], [], []]


async def test_a_redelivered_smaller_run_leaves_no_stale_rows(
    index: MilvusVectorIndex, key: IndexKey
) -> None:
    slide = str(uuid4())
    vectors = random_vectors(6, seed=3)
    await index.upsert(key, rows_for("t", slide, vectors, 1))
    await index.upsert(key, rows_for("t", slide, vectors[:2], 1))

    answers = await index.search(key, normalised(vectors), tenant="t", generation=1, limit=10)

    assert {(hit.x, hit.y) for answer in answers for hit in answer} == {(0, 0), (224, 0)}


async def test_swap_deletes_the_old_generation_only(
    index: MilvusVectorIndex, key: IndexKey
) -> None:
    slide = str(uuid4())
    vectors = random_vectors(4, seed=4)
    await index.upsert(key, rows_for("t", slide, vectors, 1))
    await index.upsert(key, rows_for("t", slide, vectors, 2))

    await index.delete_generation(1)

    query = normalised(vectors[:1])
    assert await index.search(key, query, tenant="t", generation=1, limit=5) == [[]]
    (answer,) = await index.search(key, query, tenant="t", generation=2, limit=5)
    assert [hit.slide_id for hit in answer] == [slide] * 4


async def test_dimensions_name_the_indexed_versions(
    index: MilvusVectorIndex, key: IndexKey
) -> None:
    assert await index.dimensions(key.model, key.version) == ()
    await index.upsert(key, rows_for("t", str(uuid4()), random_vectors(2, seed=5), 1))

    assert await index.dimensions(key.model, key.version) == (DIMENSION,)
    assert await index.dimensions(key.model, "2") == ()


async def test_tune_index_grows_nlist_with_the_collection(
    index: MilvusVectorIndex, key: IndexKey
) -> None:
    vectors = random_vectors(20_000, seed=6)
    for start in range(0, len(vectors), 5_000):  # an upsert replaces its slides' rows: 4 slides
        await index.upsert(key, rows_for("t", str(uuid4()), vectors[start : start + 5_000], 1))

    assert await index.tune_index(key) == 4 * 141
    (answer,) = await index.search(key, normalised(vectors[:1]), tenant="t", generation=1, limit=1)
    assert answer[0].x == 0


async def test_indexer_swap_drops_the_old_generation_and_refits(milvus_uri: str) -> None:
    index = MilvusVectorIndex(milvus_uri)
    key = IndexKey(f"m-{uuid4().hex[:8]}", "1", DIMENSION)
    slide = str(uuid4())
    await index.upsert(key, rows_for("t", slide, random_vectors(3, seed=7), 1))
    await index.upsert(key, rows_for("t", slide, random_vectors(3, seed=7), 2))

    await MosaicIndexer(MemoryFiles(), index).swap(1, 2)

    query = normalised(random_vectors(1, seed=7))
    assert await index.search(key, query, tenant="t", generation=1, limit=5) == [[]]
    (answer,) = await index.search(key, query, tenant="t", generation=2, limit=5)
    assert len(answer) == 3
    index.close()

"""Mosaic and slide embeddings in Milvus, behind :class:`VectorIndex`.

One collection per (model, version, dimension): ``vec_<model>_<version>_d<dimension>``. Rows:
``id`` (``<slide>:<generation>:<kind>:<i>``, deterministic so a redelivered run overwrites its own
rows and a rebuild's generation never overwrites the live one's), ``tenant``, ``slide_id``,
``kind`` (``tile`` | ``slide``), the tile's level-0 ``x``/``y``/``size_px``, ``generation`` and the
``vector`` (COSINE). The tenant is a plain VARCHAR filtered on every search: Milvus Lite 2.5
rejects filters on a partition-key field. Index: FLAT (exact), or IVF_FLAT with ``nlist`` ≈
4·√rows (Milvus' and FAISS' rule of thumb) rebuilt by :meth:`MilvusVectorIndex.tune_index` as a
collection grows. Milvus Lite ignores IVF's ``nprobe`` (docs/benchmarks.md, search-vectors).

pymilvus is synchronous: every call runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient, MilvusException

from slidestream_platform.errors import DependencyDownError

Kind = Literal["tile", "slide"]
IndexType = Literal["IVF_FLAT", "FLAT"]
MILVUS: Final = "milvus"
"""The readiness name a delivery waiting for Milvus reports."""
MAX_ID_CHARS: Final = 128
MAX_TEXT_CHARS: Final = 64
MIN_NLIST: Final = 16
MAX_NLIST: Final = 16384
NLIST_PER_SQRT_ROWS: Final = 4
INDEX_BUILD_TIMEOUT_S: Final = 1800.0
INDEX_POLL_S: Final = 0.5
MAX_TILE_SLOTS: Final = 64
"""Tile rows a slide may have per generation (the mosaic size's ceiling): an upsert clears the
slots its rows do not fill."""
MAX_SEARCH_LIMIT: Final = 16384
"""Milvus' ceiling on topk (``quotaAndLimits.limits.topK``)."""
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_LITERAL_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
CONNECT_TIMEOUT_S: Final = 60.0
"""How long a first connection may take: pymilvus gives up after 10 s by default, which a
Milvus Lite server busy on a loaded machine (a reindex beside the live service) exceeded."""


@dataclass(frozen=True, slots=True)
class VectorRow:
    tenant: str
    slide_id: str
    kind: Kind
    index: int
    """The row's number among the slide's rows of this kind (``0`` for the slide embedding)."""
    x: int
    y: int
    size_px: int
    generation: int
    vector: npt.NDArray[np.float32]

    @property
    def id(self) -> str:
        return row_id(self.slide_id, self.generation, self.kind, self.index)


@dataclass(frozen=True, slots=True)
class VectorHit:
    slide_id: str
    kind: Kind
    x: int
    y: int
    size_px: int
    distance: float
    """Cosine distance, 1 - cosine similarity."""


@dataclass(frozen=True, slots=True)
class IndexKey:
    """Which collection: a model version's vectors of one dimension."""

    model: str
    version: str
    dimension: int


class VectorIndex(Protocol):
    async def upsert(self, key: IndexKey, rows: Sequence[VectorRow]) -> None:
        """Write ``rows`` (all of each slide's tile rows of a generation, numbered from 0) and
        drop the slide's tile rows of that generation numbered past them."""

    async def search(
        self,
        key: IndexKey,
        queries: npt.NDArray[np.float32],
        *,
        tenant: str,
        generation: int,
        limit: int,
        kind: Kind | None = None,
    ) -> list[list[VectorHit]]:
        """The ``limit`` nearest rows of ``tenant``'s ``generation`` for each query row."""

    async def delete_slide(self, key: IndexKey, slide_id: str) -> None: ...

    async def delete_generation(self, generation: int) -> None:
        """Every row of ``generation``, in every collection."""

    async def dimensions(self, model: str, version: str) -> tuple[int, ...]:
        """The dimensions that have a collection for this model version (empty: never indexed)."""

    async def tune_all(self) -> None:
        """Fit every collection's index to its size and the configured type."""


def row_id(slide_id: str, generation: int, kind: Kind, index: int) -> str:
    return f"{slide_id}:{generation}:{kind}:{index}"


def collection_name(key: IndexKey) -> str:
    """A Milvus name (letters, digits, ``_``; starts with a letter) unique per key."""
    model = _NAME_UNSAFE.sub("_", key.model)
    version = _NAME_UNSAFE.sub("_", key.version)
    return f"vec_{model}_{version}_d{key.dimension}"


def string_literal(value: str) -> str:
    """``value`` as a Milvus expression string literal: quoted, ``\\`` and ``"`` escaped.

    Control characters have no place in a tenant or an id and are refused rather than escaped.
    """
    if _LITERAL_UNSAFE.search(value):
        raise ValueError(f"control character in filter value {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scope_filter(tenant: str, generation: int, kind: Kind | None = None) -> str:
    expression = f"tenant == {string_literal(tenant)} && generation == {int(generation)}"
    if kind is not None:
        expression += f" && kind == {string_literal(kind)}"
    return expression


def nlist_for(rows: int) -> int:
    """IVF cluster count for ``rows`` vectors: 4·√rows, within [16, 16384]."""
    wanted = NLIST_PER_SQRT_ROWS * math.isqrt(max(rows, 1))
    return max(MIN_NLIST, min(MAX_NLIST, wanted))


class MilvusVectorIndex:
    """:class:`VectorIndex` on a Milvus server (Milvus Lite's or a cluster's proxy)."""

    def __init__(
        self,
        uri: str,
        token: str = "",
        *,
        index_type: IndexType = "IVF_FLAT",
        nprobe: int = 16,
        tile_slots: int = MAX_TILE_SLOTS,
    ) -> None:
        self._uri = uri
        self._token = token
        self._connected: MilvusClient | None = None
        self._index_type = index_type
        self._nprobe = nprobe
        self._tile_slots = tile_slots
        self._known: set[str] = set()

    @property
    def _client(self) -> MilvusClient:
        # Connected on first use (in a worker thread): a service starts while Milvus is down,
        # and its similarity routes answer 503 until Milvus is back.
        if self._connected is None:
            try:
                self._connected = MilvusClient(
                    uri=self._uri, token=self._token, timeout=CONNECT_TIMEOUT_S
                )
            except MilvusException as error:
                raise DependencyDownError(
                    f"Milvus at {self._uri}: {error}", dependency=MILVUS
                ) from error
        return self._connected

    def close(self) -> None:
        if self._connected is not None:
            self._connected.close()
            self._connected = None

    async def upsert(self, key: IndexKey, rows: Sequence[VectorRow]) -> None:
        if rows:
            await _call(self._upsert, key, rows)

    async def search(
        self,
        key: IndexKey,
        queries: npt.NDArray[np.float32],
        *,
        tenant: str,
        generation: int,
        limit: int,
        kind: Kind | None = None,
    ) -> list[list[VectorHit]]:
        expression = scope_filter(tenant, generation, kind)
        answers: list[list[VectorHit]] = await _call(self._search, key, queries, expression, limit)
        return answers

    async def delete_slide(self, key: IndexKey, slide_id: str) -> None:
        name = collection_name(key)
        await _call(self._delete_slide, name, slide_id)

    async def delete_generation(self, generation: int) -> None:
        await _call(self._delete_generation, int(generation))

    async def dimensions(self, model: str, version: str) -> tuple[int, ...]:
        prefix = collection_name(IndexKey(model, version, 0))[: -len("0")]
        names: list[str] = await _call(self._list_collections)
        return tuple(sorted(int(n[len(prefix) :]) for n in names if _has_dim(n, prefix)))

    async def tune_all(self) -> None:
        for name in await _call(self._list_collections):
            if name.startswith("vec_"):
                await _call(self._tune_collection, name)

    async def tune_index(self, key: IndexKey) -> int:
        """Rebuild the index when its type is not this adapter's, or the collection outgrew (or
        shrank from) its IVF ``nlist`` by more than a factor 2; returns the ``nlist`` in use
        (0 for FLAT)."""
        nlist: int = await _call(self._tune_index, key)
        return nlist

    # -- synchronous halves (worker threads) ----------------------------------------------

    def _ensure(self, key: IndexKey) -> str:
        name = collection_name(key)
        if name in self._known or self._client.has_collection(name):
            self._known.add(name)
            return name
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_CHARS)
        for text in ("tenant", "slide_id", "kind"):
            schema.add_field(text, DataType.VARCHAR, max_length=MAX_TEXT_CHARS)
        for number in ("x", "y", "size_px", "generation"):
            schema.add_field(number, DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=key.dimension)
        self._client.create_collection(name, schema=schema, index_params=self._index(MIN_NLIST))
        self._client.load_collection(name)
        self._known.add(name)
        return name

    def _index(self, nlist: int) -> Any:
        params = self._client.prepare_index_params()
        params.add_index(
            field_name="vector",
            index_type=self._index_type,
            metric_type="COSINE",
            params={"nlist": nlist} if self._index_type == "IVF_FLAT" else {},
        )
        return params

    def _upsert(self, key: IndexKey, rows: Sequence[VectorRow]) -> None:
        name = self._ensure(key)
        self._client.upsert(name, [_record(row) for row in rows])
        # A redo with fewer tiles leaves rows numbered past its own: delete those by id (ids
        # are deterministic, so no query is needed; deleting an absent id is a no-op).
        stale = [
            row_id(slide_id, generation, "tile", index)
            for (slide_id, generation), count in _tiles_by_slide(rows).items()
            for index in range(count, self._tile_slots)
        ]
        if stale:
            self._client.delete(name, ids=stale)

    def _delete_slide(self, name: str, slide_id: str) -> None:
        if self._client.has_collection(name):
            self._client.delete(name, filter=f"slide_id == {string_literal(slide_id)}")

    def _list_collections(self) -> list[str]:
        return list(self._client.list_collections())

    def _search(
        self, key: IndexKey, queries: npt.NDArray[np.float32], expression: str, limit: int
    ) -> list[list[VectorHit]]:
        name = collection_name(key)
        if not self._client.has_collection(name):
            return [[] for _ in range(len(queries))]
        answers = self._client.search(
            name,
            data=np.asarray(queries, dtype=np.float32).tolist(),
            filter=expression,
            limit=min(limit, MAX_SEARCH_LIMIT),
            output_fields=["slide_id", "kind", "x", "y", "size_px"],
            search_params={"metric_type": "COSINE", "params": {"nprobe": self._nprobe}},
        )
        return [[_hit(hit) for hit in answer] for answer in answers]

    def _delete_generation(self, generation: int) -> None:
        for name in self._client.list_collections():
            if name.startswith("vec_"):
                self._client.delete(name, filter=f"generation == {generation}")

    def _tune_index(self, key: IndexKey) -> int:
        return self._tune_collection(self._ensure(key))

    def _tune_collection(self, name: str) -> int:
        self._client.flush(name)
        rows = int(self._client.get_collection_stats(name)["row_count"])
        described = self._client.describe_index(name, "vector")
        current = int(described.get("nlist", 0))
        wanted = nlist_for(rows) if self._index_type == "IVF_FLAT" else 0
        outgrown = max(wanted, current) > 2 * min(wanted, current)
        if described.get("index_type") != self._index_type or outgrown:
            self._client.release_collection(name)
            self._client.drop_index(name, "vector")
            self._client.create_index(name, self._index(wanted))
            current = wanted
        self._wait_built(name)
        self._client.load_collection(name)
        return current

    def _wait_built(self, name: str) -> None:
        """Until every sealed row is in the index (builds run in the server, asynchronously)."""
        deadline = time.monotonic() + INDEX_BUILD_TIMEOUT_S
        while time.monotonic() < deadline:
            state = self._client.describe_index(name, "vector")
            if int(state.get("pending_index_rows", 0)) == 0 and state.get("state") != "InProgress":
                return
            time.sleep(INDEX_POLL_S)
        raise DependencyDownError(
            f"Milvus: the index of {name} was not built in time", dependency=MILVUS
        )


def _has_dim(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and name[len(prefix) :].isdigit()


def _record(row: VectorRow) -> dict[str, object]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "slide_id": row.slide_id,
        "kind": row.kind,
        "x": int(row.x),
        "y": int(row.y),
        "size_px": int(row.size_px),
        "generation": int(row.generation),
        "vector": np.asarray(row.vector, dtype=np.float32).tolist(),
    }


def _tiles_by_slide(rows: Sequence[VectorRow]) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = {}
    for row in rows:
        slot = (row.slide_id, row.generation)
        counts[slot] = counts.get(slot, 0) + (row.kind == "tile")
    return counts


def _hit(hit: dict[str, Any]) -> VectorHit:
    entity = hit["entity"]
    # COSINE answers similarity (higher is closer); we report distance like the API does.
    return VectorHit(
        slide_id=str(entity["slide_id"]),
        kind=entity["kind"],
        x=int(entity["x"]),
        y=int(entity["y"]),
        size_px=int(entity["size_px"]),
        distance=1.0 - float(hit["distance"]),
    )


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except MilvusException as error:
        raise DependencyDownError(f"Milvus: {error}", dependency=MILVUS) from error

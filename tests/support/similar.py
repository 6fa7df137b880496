"""In-memory stand-ins for the similarity search's ports (SQL rows, embedding files, vectors,
crops) and helpers to plant slides of known tissue in them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
import numpy.typing as npt

from slidestream_catalog.adapters.similar_source import ModelRun, SlideImages
from slidestream_catalog.adapters.vectors import IndexKey, Kind, VectorHit, VectorRow
from slidestream_catalog.domain.mosaic import normalised
from slidestream_catalog.domain.similarity import Level
from slidestream_contracts.embeddings import TileEmbeddings
from slidestream_contracts.events import ObjectRef

TILE_SIZE_L0_PX = 512


def ref_for(key: str, data: bytes = b"") -> ObjectRef:
    return ObjectRef(
        bucket="derived", key=key, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)
    )


def grid_tiles(embeddings: npt.NDArray[np.float32], columns: int = 8) -> TileEmbeddings:
    """Tiles laid out row-major on a grid of ``columns`` (level-0 origins)."""
    index = np.arange(len(embeddings))
    origins = np.stack([index % columns, index // columns], axis=1) * TILE_SIZE_L0_PX
    return TileEmbeddings(np.asarray(embeddings, np.float32), origins.astype(np.int64), 512)


@dataclass
class MemorySource:
    """:class:`SimilarSource` over dicts (generation 1 is live)."""

    runs_by_slide: dict[tuple[str, UUID], list[ModelRun]] = field(default_factory=dict)
    slide_images: dict[tuple[str, UUID], SlideImages] = field(default_factory=dict)
    live: int = 1

    def add(self, tenant: str, run: ModelRun, images: SlideImages | None = None) -> None:
        self.runs_by_slide.setdefault((tenant, run.slide_id), []).append(run)
        if images is not None:
            self.slide_images[(tenant, run.slide_id)] = images

    async def live_generation(self) -> int:
        return self.live

    async def runs_of(self, generation: int, tenant: str, slide_id: UUID) -> list[ModelRun]:
        return list(self.runs_by_slide.get((tenant, slide_id), []))

    async def runs(
        self, generation: int, tenant: str, slide_ids: Sequence[UUID], model: str
    ) -> dict[UUID, ModelRun]:
        return {
            run.slide_id: run
            for slide in slide_ids
            for run in self.runs_by_slide.get((tenant, slide), [])
            if run.model == model
        }

    async def versions(self, generation: int, tenant: str, model: str) -> list[str]:
        found = {
            run.model_version
            for (owner, _), runs in self.runs_by_slide.items()
            if owner == tenant
            for run in runs
            if run.model == model
        }
        return sorted(found, key=int)

    async def images(self, generation: int, tenant: str, slide_id: UUID) -> SlideImages | None:
        return self.slide_images.get((tenant, slide_id))


@dataclass
class MemoryFiles:
    """:class:`EmbeddingFiles` over a dict keyed by object key."""

    tiles_by_key: dict[str, TileEmbeddings] = field(default_factory=dict)

    async def tiles(self, ref: ObjectRef) -> TileEmbeddings:
        return self.tiles_by_key[ref.key]

    async def slide_vector(self, ref: ObjectRef) -> npt.NDArray[np.float32]:
        return self.tiles_by_key[ref.key].embeddings.mean(axis=0)


@dataclass
class MemoryVectors:
    """:class:`VectorIndex` by exact search over lists (the contract, not the engine)."""

    rows: dict[IndexKey, dict[str, VectorRow]] = field(default_factory=dict)

    async def upsert(self, key: IndexKey, rows: Sequence[VectorRow]) -> None:
        collection = self.rows.setdefault(key, {})
        for row in rows:
            collection[row.id] = row

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
        rows = [
            row
            for row in self.rows.get(key, {}).values()
            if row.tenant == tenant
            and row.generation == generation
            and (kind is None or row.kind == kind)
        ]
        if not rows:
            return [[] for _ in queries]
        matrix = normalised(np.stack([row.vector for row in rows]))
        answers = []
        for query in normalised(queries):
            distance = 1.0 - matrix @ query
            order = np.argsort(distance, kind="stable")[:limit]
            answers.append(
                [
                    VectorHit(
                        rows[i].slide_id,
                        rows[i].kind,
                        rows[i].x,
                        rows[i].y,
                        rows[i].size_px,
                        float(distance[i]),
                    )
                    for i in order
                ]
            )
        return answers

    async def delete_slide(self, key: IndexKey, slide_id: str) -> None:
        collection = self.rows.get(key, {})
        for name in [n for n, row in collection.items() if row.slide_id == slide_id]:
            del collection[name]

    async def delete_generation(self, generation: int) -> None:
        for collection in self.rows.values():
            for name in [n for n, row in collection.items() if row.generation == generation]:
                del collection[name]

    async def tune_all(self) -> None:
        """Exact search has no index to fit."""

    async def dimensions(self, model: str, version: str) -> tuple[int, ...]:
        return tuple(
            sorted(
                key.dimension
                for key, rows in self.rows.items()
                if (key.model, key.version) == (model, version) and rows
            )
        )


@dataclass
class MemoryCrops:
    """:class:`Crops` answering a fixed PNG and remembering what was asked."""

    asked: list[tuple[int, int, int]] = field(default_factory=list)

    async def crop_png(self, images: SlideImages, x: int, y: int, size_px: int) -> bytes:
        self.asked.append((x, y, size_px))
        return b"\x89PNG fake"


def pyramid(width_px: int, height_px: int) -> SlideImages:
    """Three levels, each 4x smaller, with a DICOM reference per level."""
    levels = tuple(Level(i, width_px // 4**i, height_px // 4**i) for i in range(3))
    dicom = tuple(ref_for(f"t/s/level-{lv.index}.dcm") for lv in levels)
    return SlideImages(levels, dicom, None)

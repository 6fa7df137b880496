"""Similarity queries, from the caller's tenant to a page of similar slides.

By slide (``SimilarQuery``):
1. the live generation; the slide's run of the asked model (the only one with embeddings when
   none is named) — an unknown slide is 404, a model it was not run with is 422 ``model``;
2. its tile embeddings (``embeddings.npz``);
3. the query vectors: a region's tiles' mean (the region taken to level 0 with the slide's
   pyramid), or the slide's own mosaic;
4. candidates: the nearest mosaic rows of the tenant's slides in Milvus; slides with the most
   rows among them first;
5. re-rank: each candidate's full tile embeddings decide its distance
   (:mod:`slidestream_catalog.domain.similarity`); the ``k`` closest answer.

By vector (an embedded image patch): steps 4-5 with that one vector, the model's latest version
indexed for the tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import numpy as np
import numpy.typing as npt

from slidestream_catalog.adapters.embedding_files import EmbeddingFiles
from slidestream_catalog.adapters.similar_source import ModelRun, SimilarSource
from slidestream_catalog.adapters.vectors import IndexKey, VectorHit, VectorIndex
from slidestream_catalog.domain.mosaic import MOSAIC_TILES, mosaic_indices, normalised
from slidestream_catalog.domain.similarity import (
    Ranked,
    RegionError,
    crop_url,
    rank_candidate,
    region_query,
    region_to_level0,
    top,
)
from slidestream_contracts.search import SimilarHit, SimilarPage, SimilarQuery

CANDIDATE_ROWS_PER_QUERY: Final = 256
"""Mosaic rows fetched per query vector (several rows of one slide come back together)."""
RERANK_SLIDES_PER_K: Final = 3
"""Candidate slides re-ranked on their full embeddings, per slide asked for."""
MAX_RERANK_SLIDES: Final = 150
RERANK_READS_AT_ONCE: Final = 8


class SimilarQueryError(ValueError):
    """A query that cannot be answered as asked; ``field`` names the culprit."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True, slots=True)
class Prepared:
    key: IndexKey
    queries: npt.NDArray[np.float32]
    exclude: UUID | None


class SimilarSearch:
    def __init__(self, source: SimilarSource, index: VectorIndex, files: EmbeddingFiles) -> None:
        self._source = source
        self._index = index
        self._files = files

    async def by_slide(self, tenant: str, query: SimilarQuery) -> SimilarPage:
        generation = await self._source.live_generation()
        run = await self._run(generation, tenant, query.slide_id, query.model)
        if run.embeddings is None:
            raise SimilarQueryError(422, "model", f"{run.model} wrote no embeddings")
        tiles = await self._files.tiles(run.embeddings)
        if query.region is None:
            picks = await asyncio.to_thread(
                mosaic_indices, tiles.embeddings, tiles.origins_px, tiles=MOSAIC_TILES
            )
            vectors = normalised(tiles.embeddings[picks])
        else:
            images = await self._source.images(generation, tenant, query.slide_id)
            region = query.region
            try:
                if images is None:
                    raise RegionError("the slide's pyramid is not known yet")
                rectangle = region_to_level0(
                    region.x, region.y, region.width, region.height, region.level, images.levels
                )
                vectors = region_query(
                    tiles.embeddings, tiles.origins_px, tiles.tile_size_l0_px, rectangle
                )[None, :]
            except RegionError as error:
                raise SimilarQueryError(422, "region", str(error)) from error
        key = IndexKey(run.model, run.model_version, tiles.dimension)
        await self._check_indexed(key)
        exclude = None if query.include_same_slide else query.slide_id
        ranked = await self._ranked(tenant, generation, Prepared(key, vectors, exclude), query.k)
        return _page(key, ranked)

    async def by_vector(
        self, tenant: str, model: str, version: str | None, vector: Sequence[float], k: int
    ) -> SimilarPage:
        generation = await self._source.live_generation()
        versions = await self._source.versions(generation, tenant, model)
        if not versions or (version is not None and version not in versions):
            raise SimilarQueryError(422, "model", f"no slide is indexed with {model} {version}")
        chosen = version if version is not None else versions[-1]
        key = IndexKey(model, chosen, len(vector))
        dimensions = await self._index.dimensions(model, chosen)
        if key.dimension not in dimensions:
            raise SimilarQueryError(
                422,
                "embedding",
                f"{model} {chosen} is indexed with dimension {dimensions or 'none'}, "
                f"not {key.dimension}",
            )
        queries = normalised(np.asarray(vector, dtype=np.float32))[None, :]
        ranked = await self._ranked(tenant, generation, Prepared(key, queries, None), k)
        return _page(key, ranked)

    async def _run(
        self, generation: int, tenant: str, slide_id: UUID, model: str | None
    ) -> ModelRun:
        runs = await self._source.runs_of(generation, tenant, slide_id)
        if not runs:
            raise SimilarQueryError(404, "slide_id", f"no model run of slide {slide_id}")
        if model is not None:
            named = [run for run in runs if run.model == model]
            if not named:
                raise SimilarQueryError(422, "model", f"slide {slide_id} was not run with {model}")
            return named[0]
        embedded = [run for run in runs if run.embeddings is not None]
        if len(embedded) != 1:
            names = sorted(run.model for run in embedded) or "no model with embeddings"
            raise SimilarQueryError(422, "model", f"name one model: {names}")
        return embedded[0]

    async def _check_indexed(self, key: IndexKey) -> None:
        if key.dimension not in await self._index.dimensions(key.model, key.version):
            raise SimilarQueryError(
                422, "model", f"{key.model} {key.version} has never been indexed"
            )

    async def _ranked(
        self, tenant: str, generation: int, prepared: Prepared, k: int
    ) -> list[Ranked]:
        answers = await self._index.search(
            prepared.key,
            prepared.queries,
            tenant=tenant,
            generation=generation,
            limit=CANDIDATE_ROWS_PER_QUERY,
            kind="tile",
        )
        candidates = _candidates(answers, prepared.exclude, k)
        runs = await self._source.runs(generation, tenant, candidates, prepared.key.model)
        gate = asyncio.Semaphore(RERANK_READS_AT_ONCE)

        async def rank(run: ModelRun) -> Ranked | None:
            if run.model_version != prepared.key.version or run.embeddings is None:
                return None
            async with gate:
                tiles = await self._files.tiles(run.embeddings)
            return rank_candidate(
                str(run.slide_id),
                prepared.queries,
                tiles.embeddings,
                tiles.origins_px,
                tiles.tile_size_l0_px,
            )

        ranked = await asyncio.gather(*(rank(runs[s]) for s in candidates if s in runs))
        return top(ranked, k)


def _candidates(answers: list[list[VectorHit]], exclude: UUID | None, k: int) -> list[UUID]:
    """Slides to re-rank: most mosaic rows among the answers first (a slide made of the query's
    tissue has many; one that merely holds a tile of it, one), then the nearest row."""
    votes: dict[UUID, int] = {}
    best: dict[UUID, float] = {}
    for answer in answers:
        for hit in answer:
            slide = UUID(hit.slide_id)
            if slide != exclude:
                votes[slide] = votes.get(slide, 0) + 1
                best[slide] = min(hit.distance, best.get(slide, hit.distance))
    ordered = sorted(votes, key=lambda slide: (-votes[slide], best[slide], str(slide)))
    return ordered[: min(MAX_RERANK_SLIDES, RERANK_SLIDES_PER_K * k)]


def _page(key: IndexKey, ranked: list[Ranked]) -> SimilarPage:
    return SimilarPage(
        model=key.model,
        model_version=key.version,
        items=tuple(
            SimilarHit(
                slide_id=UUID(item.slide_id),
                x=item.x,
                y=item.y,
                size_px=item.size_px,
                distance=item.distance,
                crop_url=crop_url(item.slide_id, item.x, item.y, item.size_px),
            )
            for item in ranked
        ),
    )

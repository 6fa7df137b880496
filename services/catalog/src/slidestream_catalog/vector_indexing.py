"""Indexing a model run's embeddings for similarity search.

``index_run`` (one ``slides.inferred.v1`` with embeddings, into one search generation):
1. read the run's ``embeddings.npz`` (every tile's embedding and level-0 position);
2. pick the slide's mosaic (:mod:`slidestream_catalog.domain.mosaic`), off the event loop;
3. upsert the mosaic tiles and the slide embedding into the model version's collection, keyed
   ``<slide>:<generation>:<kind>:<i>`` (a redelivery overwrites; rows a smaller redo no longer
   has are dropped by the upsert).

``swap`` (a rebuilt generation went live): delete the old generation's rows everywhere, then refit
each collection's index to its new size.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from slidestream_catalog.adapters.embedding_files import EmbeddingFiles
from slidestream_catalog.adapters.vectors import MAX_TILE_SLOTS, IndexKey, VectorIndex, VectorRow
from slidestream_catalog.domain.mosaic import MOSAIC_TILES, mosaic_indices, normalised
from slidestream_contracts.embeddings import TileEmbeddings
from slidestream_contracts.events import SlideInferredV1


class MosaicIndexer:
    """The :class:`~slidestream_catalog.ports.RunIndexer` writing each run's mosaic and slide
    embedding to a vector index."""

    def __init__(
        self,
        files: EmbeddingFiles,
        index: VectorIndex,
        *,
        mosaic_tiles: int = MOSAIC_TILES,
        location_weight: float = 0.0,
    ) -> None:
        if not 0 < mosaic_tiles <= MAX_TILE_SLOTS:
            raise ValueError(f"mosaic_tiles must be 1..{MAX_TILE_SLOTS}, not {mosaic_tiles}")
        self._files = files
        self._index = index
        self._mosaic_tiles = mosaic_tiles
        self._location_weight = location_weight

    async def index_run(self, event: SlideInferredV1, generation: int) -> None:
        if event.embeddings is None:
            return
        tiles = await self._files.tiles(event.embeddings)
        if tiles.count == 0:
            return
        picks = await asyncio.to_thread(
            mosaic_indices,
            tiles.embeddings,
            tiles.origins_px,
            tiles=self._mosaic_tiles,
            location_weight=self._location_weight,
        )
        slide_vector = (
            await self._files.slide_vector(event.slide_embedding)
            if event.slide_embedding is not None
            else tiles.embeddings.mean(axis=0)
        )
        rows = mosaic_rows(event, generation, tiles, picks, slide_vector)
        key = IndexKey(event.model_name, event.model_version, tiles.dimension)
        await self._index.upsert(key, rows)

    async def swap(self, old_generation: int, new_generation: int) -> None:
        if old_generation != new_generation:
            await self._index.delete_generation(old_generation)
            # A rebuild is when collections change size the most: refit their IVF lists.
            await self._index.tune_all()


def mosaic_rows(
    event: SlideInferredV1,
    generation: int,
    tiles: TileEmbeddings,
    picks: npt.NDArray[np.int64],
    slide_vector: npt.NDArray[np.float32],
) -> list[VectorRow]:
    """The rows of one run: its mosaic tiles (``tile``, numbered in mosaic order) and its slide
    embedding (``slide`` 0, at the origin with size 0)."""
    slide_id, tenant = str(event.slide_id), event.tenant
    vectors = normalised(tiles.embeddings[picks])
    rows = [
        VectorRow(
            tenant=tenant,
            slide_id=slide_id,
            kind="tile",
            index=number,
            x=int(tiles.origins_px[pick, 0]),
            y=int(tiles.origins_px[pick, 1]),
            size_px=tiles.tile_size_l0_px,
            generation=generation,
            vector=vector,
        )
        for number, (pick, vector) in enumerate(zip(picks, vectors, strict=True))
    ]
    rows.append(
        VectorRow(tenant, slide_id, "slide", 0, 0, 0, 0, generation, normalised(slide_vector))
    )
    return rows

"""The embedding files a model run writes, defined once for the writer (inference) and the
readers (the catalog's similarity search, notebooks).

``embeddings.npz`` (NumPy's zip of ``.npy`` arrays, read without pickle):

* :data:`EMBEDDINGS_ARRAY`: float16 ``(N, D)``, one row per tissue tile;
* :data:`ORIGINS_ARRAY`: int64 ``(N, 2)``, each tile's top-left corner ``(x, y)`` in level-0 px;
* :data:`TILE_SIZE_ARRAY`: int64 scalar, the tiles' side in level-0 px.

``slide-embedding.npy``: float32 ``(D,)``, the mean of the tile embeddings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

EMBEDDINGS_NAME: Final = "embeddings.npz"
SLIDE_EMBEDDING_NAME: Final = "slide-embedding.npy"
EMBEDDINGS_ARRAY: Final = "embeddings"
ORIGINS_ARRAY: Final = "origins_px"
TILE_SIZE_ARRAY: Final = "tile_size_l0_px"


class EmbeddingsFileError(ValueError):
    """The bytes are not an ``embeddings.npz`` of this layout."""


@dataclass(frozen=True, slots=True)
class TileEmbeddings:
    """A run's tile embeddings with where each tile lies on the slide."""

    embeddings: npt.NDArray[np.float32]
    """``(N, D)``, widened from the stored float16."""
    origins_px: npt.NDArray[np.int64]
    """``(N, 2)`` level-0 ``(x, y)`` of each tile's top-left corner."""
    tile_size_l0_px: int

    @property
    def count(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.embeddings.shape[1])


def embeddings_arrays(
    embeddings: npt.ArrayLike, origins_px: npt.ArrayLike, tile_size_l0_px: float
) -> dict[str, np.ndarray]:
    """The arrays of an ``embeddings.npz`` under their names (the writer's half)."""
    return {
        EMBEDDINGS_ARRAY: np.asarray(embeddings, dtype=np.float16),
        ORIGINS_ARRAY: np.asarray(origins_px, dtype=np.int64),
        TILE_SIZE_ARRAY: np.asarray(round(tile_size_l0_px), np.int64),
    }


def embeddings_npz_bytes(tiles: TileEmbeddings) -> bytes:
    """``tiles`` as the bytes of an ``embeddings.npz`` (tests, benchmarks, tools)."""
    buffer = io.BytesIO()
    arrays = embeddings_arrays(tiles.embeddings, tiles.origins_px, tiles.tile_size_l0_px)
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def read_tile_embeddings(data: bytes) -> TileEmbeddings:
    """Parse an ``embeddings.npz``; :class:`EmbeddingsFileError` when it is not one."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            embeddings = np.asarray(npz[EMBEDDINGS_ARRAY], dtype=np.float32)
            origins = np.asarray(npz[ORIGINS_ARRAY], dtype=np.int64)
            tile_size = int(npz[TILE_SIZE_ARRAY])
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise EmbeddingsFileError(f"not an embeddings.npz: {error}") from error
    if embeddings.ndim != 2 or origins.shape != (embeddings.shape[0], 2) or tile_size <= 0:
        raise EmbeddingsFileError(
            f"embeddings {embeddings.shape}, origins {origins.shape}, tile {tile_size} px"
        )
    return TileEmbeddings(embeddings, origins, tile_size)

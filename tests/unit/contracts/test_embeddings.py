"""The embeddings file layout: written and read through the one definition."""

from __future__ import annotations

import numpy as np
import pytest

from slidestream_contracts.embeddings import (
    EmbeddingsFileError,
    TileEmbeddings,
    embeddings_npz_bytes,
    read_tile_embeddings,
)


def test_round_trip_keeps_positions_and_widens_to_float32() -> None:
    tiles = TileEmbeddings(
        np.arange(12, dtype=np.float32).reshape(3, 4) / 10,
        np.array([[0, 0], [512, 0], [0, 512]], np.int64),
        512,
    )

    back = read_tile_embeddings(embeddings_npz_bytes(tiles))

    assert back.embeddings.dtype == np.float32
    assert back.embeddings == pytest.approx(tiles.embeddings, abs=1e-3)  # stored as float16
    assert back.origins_px.tolist() == tiles.origins_px.tolist()
    assert (back.tile_size_l0_px, back.count, back.dimension) == (512, 3, 4)


def test_other_bytes_are_refused() -> None:
    with pytest.raises(EmbeddingsFileError):
        read_tile_embeddings(b"not a zip")

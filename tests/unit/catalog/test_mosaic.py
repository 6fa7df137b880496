"""The mosaic: one representative tile per k-means cluster, deterministic."""

from __future__ import annotations

import numpy as np

from slidestream_catalog.domain.mosaic import kmeans, mosaic_indices, normalised


def clustered(counts: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tiles around ``len(counts)`` orthogonal directions, with their cluster numbers."""
    rng = np.random.default_rng(seed)
    vectors, labels = [], []
    for cluster, count in enumerate(counts):
        centre = np.zeros(16, np.float32)
        centre[cluster] = 1.0
        vectors.append(centre + rng.normal(0, 0.05, (count, 16)).astype(np.float32))
        labels += [cluster] * count
    return np.vstack(vectors), np.asarray(labels)


def test_one_tile_per_tissue_cluster() -> None:
    embeddings, labels = clustered([200, 50, 10, 5])
    origins = np.zeros((len(embeddings), 2), np.int64)

    picks = mosaic_indices(embeddings, origins, tiles=4)

    assert sorted(labels[picks]) == [0, 1, 2, 3]


def test_fewer_tiles_than_the_mosaic_keeps_every_tile() -> None:
    embeddings, _ = clustered([3])

    picks = mosaic_indices(embeddings, np.zeros((3, 2), np.int64), tiles=32)

    assert list(picks) == [0, 1, 2]


def test_the_same_embeddings_give_the_same_mosaic() -> None:
    embeddings, _ = clustered([100, 100, 100], seed=3)
    origins = np.arange(600).reshape(300, 2)

    first = mosaic_indices(embeddings, origins, tiles=8, location_weight=0.5)
    second = mosaic_indices(embeddings.copy(), origins, tiles=8, location_weight=0.5)

    assert list(first) == list(second)
    assert len(first) == 8


def test_location_weight_spreads_picks_over_the_slide() -> None:
    # One tissue type everywhere: without location, picks follow noise; with a strong location
    # weight they cover both halves of the slide.
    embeddings, _ = clustered([400], seed=4)
    origins = np.stack([np.arange(400) * 10, np.zeros(400)], axis=1).astype(np.int64)

    picks = mosaic_indices(embeddings, origins, tiles=4, location_weight=10.0)

    xs = origins[picks, 0]
    assert (xs < 2000).sum() == 2
    assert (xs >= 2000).sum() == 2


def test_kmeans_separates_obvious_clusters() -> None:
    points = np.array([[0, 0], [0, 0.1], [10, 10], [10, 10.1]], np.float32)

    _, labels = kmeans(points, 2, seed=1)

    assert labels[0] == labels[1] != labels[2] == labels[3]


def test_empty_and_zero_rows() -> None:
    assert mosaic_indices(np.empty((0, 4)), np.empty((0, 2)), tiles=4).size == 0
    assert np.array_equal(normalised(np.zeros((1, 3))), np.zeros((1, 3)))

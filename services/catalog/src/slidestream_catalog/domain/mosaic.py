"""A slide's mosaic: a few dozen tiles that stand for all of its tissue (Yottixel, Kalra et al.
2020; SISH, Chen et al. 2022), so that slide-to-slide search compares dozens of tiles, not
every one.

Steps: (1) L2-normalise the tile embeddings (cosine geometry); (2) optionally append each tile's
position, scaled to the slide's tissue extent and weighted by ``location_weight``, which spreads
the picks over the slide as Yottixel's second, spatial clustering does; (3) k-means with
``k = min(tiles, n)`` (k-means++ seeding, Lloyd iterations, fixed seed: the same embeddings always
give the same mosaic); (4) per cluster, the member tile nearest its centroid.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

MOSAIC_TILES: Final = 32
"""Representative tiles per slide: 1 M vectors ≈ 30 k slides (issue 15's sizing)."""
KMEANS_ITERATIONS: Final = 25
KMEANS_SEED: Final = 15
Floats = npt.NDArray[np.float32]


def normalised(vectors: npt.ArrayLike) -> Floats:
    """Rows scaled to unit length (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    result: Floats = np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)
    return result


def mosaic_indices(
    embeddings: npt.ArrayLike,
    origins_px: npt.ArrayLike,
    *,
    tiles: int = MOSAIC_TILES,
    location_weight: float = 0.0,
    seed: int = KMEANS_SEED,
) -> npt.NDArray[np.int64]:
    """Indices (sorted) of the tiles of the mosaic: one per k-means cluster."""
    features = normalised(embeddings)
    count = len(features)
    k = min(tiles, count)
    if k == 0:
        return np.empty(0, np.int64)
    if location_weight > 0:
        features = np.hstack([features, location_weight * _unit_positions(origins_px)])
    centroids, labels = kmeans(features, k, seed=seed)
    chosen = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        if len(members) == 0:
            continue
        gaps = np.linalg.norm(features[members] - centroids[cluster], axis=1)
        chosen.append(int(members[int(np.argmin(gaps))]))
    return np.asarray(sorted(set(chosen)), np.int64)


def kmeans(
    points: Floats, k: int, *, seed: int, iterations: int = KMEANS_ITERATIONS
) -> tuple[Floats, npt.NDArray[np.int64]]:
    """Lloyd's k-means from a k-means++ start: (centroids ``(k, D)``, label per point)."""
    rng = np.random.default_rng(seed)
    centroids = _plus_plus(points, k, rng)
    labels = np.zeros(len(points), np.int64)
    for _ in range(iterations):
        labels = _nearest(points, centroids)
        moved = centroids.copy()
        for cluster in range(k):
            members = points[labels == cluster]
            if len(members):
                moved[cluster] = members.mean(axis=0)
        if np.allclose(moved, centroids):
            break
        centroids = moved
    return centroids, _nearest(points, centroids)


def _plus_plus(points: Floats, k: int, rng: np.random.Generator) -> Floats:
    # Arthur & Vassilvitskii 2007: each next seed drawn with probability ∝ squared distance.
    chosen = [int(rng.integers(len(points)))]
    gaps = np.sum((points - points[chosen[0]]) ** 2, axis=1)
    for _ in range(1, k):
        total = float(gaps.sum())
        if total <= 0:
            remaining = np.setdiff1d(np.arange(len(points)), chosen)
            chosen.append(int(remaining[0]))
        else:
            chosen.append(int(rng.choice(len(points), p=gaps / total)))
        gaps = np.minimum(gaps, np.sum((points - points[chosen[-1]]) ** 2, axis=1))
    return points[chosen].astype(np.float32)


def _nearest(points: Floats, centroids: Floats) -> npt.NDArray[np.int64]:
    # |p - c|² = |p|² - 2 p·c + |c|²; |p|² is the same for every centroid.
    scores = points @ centroids.T * -2 + np.sum(centroids**2, axis=1)
    nearest: npt.NDArray[np.int64] = np.argmin(scores, axis=1).astype(np.int64)
    return nearest


def _unit_positions(origins_px: npt.ArrayLike) -> Floats:
    origins = np.asarray(origins_px, dtype=np.float32)
    low = origins.min(axis=0)
    span = float(max(np.ptp(origins, axis=0).max(), 1.0))
    positions: Floats = (origins - low) / span
    return positions

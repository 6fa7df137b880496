"""Similarity ranking, pure: which tiles a query region covers, and the re-ranking of candidate
slides on their full tile embeddings.

Milvus returns candidate slides from their mosaics; each candidate's every tile embedding
(``embeddings.npz``) then decides its rank:

* a region query (one vector: the mean of the region's tiles): the candidate's distance is the
  cosine distance of its tiles to the query;
* a whole-slide query (the query slide's mosaic): per mosaic tile, the distance to the
  candidate's tiles; the candidate's distance is the median of those (Yottixel's "median of
  minimum distances", Kalra et al. 2020), robust to a few query tiles that match nothing.

"The distance to the candidate's tiles" is not the nearest tile's, as in Yottixel, but the
:data:`SUPPORT_TILES`-th nearest's: with the plain minimum, one stray tile (a fold, a few cells
of another tissue) made any slide a perfect match for that tissue, and a slide of stroma holding
two tumour tiles tied with slides of tumour (tests/integration/catalog/test_similar_tissue.py,
whole-slide precision@10 by type: 0.62-0.98 with the minimum, 1.0 with a support of 3).
The best tile (reported with its position) is the candidate tile nearest to any query vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from slidestream_catalog.domain.mosaic import normalised

CROP_PATH: Final = "/v1/slides/{slide_id}/crop?x={x}&y={y}&size={size}"
SUPPORT_TILES: Final = 3
"""Tiles of a candidate that must match a query vector for the match to count (see below)."""


@dataclass(frozen=True, slots=True)
class Level:
    index: int
    width_px: int
    height_px: int


@dataclass(frozen=True, slots=True)
class Rectangle:
    """Level-0 pixels."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Ranked:
    slide_id: str
    x: int
    y: int
    size_px: int
    distance: float


class RegionError(ValueError):
    """The region lies outside the slide or covers no embedded tile."""


def region_to_level0(
    x: int, y: int, width: int, height: int, level: int, levels: Sequence[Level]
) -> Rectangle:
    """A rectangle of pyramid level ``level`` in level-0 pixels (``RegionError`` when the level
    does not exist or the rectangle is not inside it)."""
    by_index = {lv.index: lv for lv in levels}
    if level not in by_index or 0 not in by_index:
        raise RegionError(f"the slide has no level {level}")
    chosen, base = by_index[level], by_index[0]
    if x + width > chosen.width_px or y + height > chosen.height_px:
        raise RegionError(
            f"({x}, {y}) + {width} x {height} exceeds level {level}'s "
            f"{chosen.width_px} x {chosen.height_px} px"
        )
    scale_x = base.width_px / chosen.width_px
    scale_y = base.height_px / chosen.height_px
    return Rectangle(
        round(x * scale_x), round(y * scale_y), round(width * scale_x), round(height * scale_y)
    )


def tiles_in(
    origins_px: npt.NDArray[np.int64], tile_size_px: int, region: Rectangle
) -> npt.NDArray[np.int64]:
    """Indices of the tiles that overlap ``region`` (level-0 pixels)."""
    x, y = origins_px[:, 0], origins_px[:, 1]
    overlaps = (
        (x < region.x + region.width)
        & (x + tile_size_px > region.x)
        & (y < region.y + region.height)
        & (y + tile_size_px > region.y)
    )
    return np.flatnonzero(overlaps).astype(np.int64)


def region_query(
    embeddings: npt.NDArray[np.float32],
    origins_px: npt.NDArray[np.int64],
    tile_size_px: int,
    region: Rectangle,
) -> npt.NDArray[np.float32]:
    """The query vector of a region: the normalised mean of its tiles' normalised embeddings."""
    inside = tiles_in(origins_px, tile_size_px, region)
    if len(inside) == 0:
        raise RegionError("the region covers no tissue tile of this model run")
    return normalised(normalised(embeddings[inside]).mean(axis=0))


def rank_candidate(
    slide_id: str,
    queries: npt.NDArray[np.float32],
    embeddings: npt.NDArray[np.float32],
    origins_px: npt.NDArray[np.int64],
    tile_size_px: int,
    *,
    support_tiles: int = SUPPORT_TILES,
) -> Ranked | None:
    """A candidate slide's distance to the query vectors (``None``: it has no tiles)."""
    if len(embeddings) == 0 or len(queries) == 0:
        return None
    similarity = normalised(np.atleast_2d(queries)) @ normalised(embeddings).T
    nearest = similarity.argmax(axis=1)
    best = int(nearest[int(similarity.max(axis=1).argmax())])
    # The support-th highest similarity per query row: a tissue counts as present only where
    # that many tiles show it.
    support = min(support_tiles, similarity.shape[1])
    supported = np.partition(similarity, -support, axis=1)[:, -support]
    per_query = 1.0 - supported
    distance = float(np.median(per_query))
    x, y = (int(v) for v in origins_px[best])
    return Ranked(slide_id, x, y, int(tile_size_px), max(distance, 0.0))


def top(ranked: Sequence[Ranked | None], k: int) -> list[Ranked]:
    """The ``k`` closest, ties broken by slide id (stable answers)."""
    present = [item for item in ranked if item is not None]
    return sorted(present, key=lambda item: (item.distance, item.slide_id))[:k]


def crop_url(slide_id: str, x: int, y: int, size_px: int) -> str:
    return CROP_PATH.format(slide_id=slide_id, x=x, y=y, size=size_px)


CROP_MAX_PX: Final = 256
"""Thumbnails are at most this many pixels a side."""


def crop_level(levels: Sequence[Level], size_px: int, allowed: Sequence[int]) -> Level:
    """The level a crop of ``size_px`` level-0 pixels is read from: the coarsest of ``allowed``
    where the crop is still at least :data:`CROP_MAX_PX` (or its own size, if smaller) wide, so
    that no more pixels than the thumbnail needs are decoded."""
    base = next(lv for lv in levels if lv.index == 0)
    wanted = min(size_px, CROP_MAX_PX)
    usable = [lv for lv in levels if lv.index in allowed]
    if not usable:
        raise RegionError("no level of the slide can be read")
    sharp = [lv for lv in usable if size_px * lv.width_px / base.width_px >= wanted]
    pool = sharp or usable
    return min(pool, key=lambda lv: lv.width_px) if sharp else max(pool, key=lambda lv: lv.width_px)


def check_crop(levels: Sequence[Level], x: int, y: int, size_px: int) -> None:
    base = next((lv for lv in levels if lv.index == 0), None)
    if base is None:
        raise RegionError("the slide's pyramid is not known yet")
    if (
        x < 0
        or y < 0
        or size_px <= 0
        or x + size_px > base.width_px
        or y + size_px > base.height_px
    ):
        raise RegionError(
            f"({x}, {y}) + {size_px} px is not inside {base.width_px} x {base.height_px} px"
        )

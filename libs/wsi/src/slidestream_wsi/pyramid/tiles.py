"""Tiles at a chosen magnification over a tissue mask, in batches of bounded memory.

What a model reads from a slide: square tiles of ``tile_size_px`` at ``mpp_um`` µm/px, only
where a low-resolution tissue mask says there is enough tissue. The source level is the coarsest
one that is still at least as fine as asked (never upsampled from a coarser one); its pixels are
resampled by the remaining factor. A tile covers a whole number of that level's pixels (``span``),
so every tile is the same region read the same way; the spacing delivered is
:attr:`TilePlan.mpp_um`, within half a level pixel per tile of the one asked. Stored tiles are
decoded one at a time into the tiles that need them, with a small cache for neighbours: memory
is the batch, a row of decoded source tiles and the cache, never a whole level.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.pyramid.geometry import PyramidLevel
from slidestream_wsi.pyramid.level import BACKGROUND_RGB, RGB_SAMPLES, Pixels, SourceSlide

BoolMask = npt.NDArray[np.bool_]
LEVEL_MPP_TOLERANCE = 1e-3
"""Relative slack when comparing a level's spacing with the one asked: 0.2499 µm/px serves 0.25."""
DECODED_CACHE_BYTES = 16 * 1024 * 1024
"""Decoded source tiles kept for the neighbouring output tiles that overlap them: 85 tiles of
256 px, enough for a tile and its right-hand neighbour at any span up to 8 source tiles."""


@dataclass(frozen=True, slots=True)
class TilePlan:
    """Which tiles to read, from where: the result of :func:`plan_tiles`."""

    level: PyramidLevel
    """The source level the tiles are read from."""
    span_px: int
    """Side of one tile's region in the source level's pixels (resampled to ``tile_size_px``)."""
    tile_size_px: int
    mpp_um: float
    """Spacing of the delivered tiles along x (µm/px): ``span_px`` × level spacing / tile size."""
    origins_px: npt.NDArray[np.int64]
    """(N, 2): x, y of each tile's top-left corner in level-0 pixels, row-major."""


@dataclass(frozen=True, slots=True)
class TileBatch:
    pixels: npt.NDArray[np.uint8]
    """(N, tile_size_px, tile_size_px, 3) RGB."""
    origins_px: npt.NDArray[np.int64]
    """(N, 2): x, y of each tile's top-left corner in level-0 pixels."""


def choose_level(levels: tuple[PyramidLevel, ...], mpp_um: float) -> PyramidLevel:
    """The coarsest level whose spacing is at most ``mpp_um`` (level 0 when all are coarser)."""
    if not levels or levels[0].mpp_x is None:
        raise ValueError("the slide states no pixel spacing: tiles at a magnification need one")
    fine_enough = [
        level
        for level in levels
        if level.mpp_x is not None and level.mpp_x <= mpp_um * (1 + LEVEL_MPP_TOLERANCE)
    ]
    return max(fine_enough, key=lambda level: level.downsample) if fine_enough else levels[0]


def plan_tiles(
    slide: SourceSlide,
    *,
    mpp_um: float,
    tile_size_px: int,
    mask: BoolMask,
    min_tissue_fraction: float,
) -> TilePlan:
    """The tiles of a grid at ``mpp_um`` whose share of tissue in ``mask`` (any size, covering
    the whole slide) is at least ``min_tissue_fraction``. Edge tiles run past the slide and
    are padded with :data:`BACKGROUND_RGB`."""
    if mpp_um <= 0 or tile_size_px <= 0 or mask.ndim != 2 or 0 in mask.shape:
        raise ValueError("tiles need a positive spacing and size and a 2-D mask")
    level = choose_level(slide.geometry, mpp_um)
    assert level.mpp_x is not None  # choose_level refuses a slide without spacing
    span = max(1, round(tile_size_px * mpp_um / level.mpp_x))
    columns = math.ceil(level.width_px / span)
    rows = math.ceil(level.height_px / span)
    fractions = _tissue_fractions(mask, (columns, rows), span, level)
    row_index, column_index = np.nonzero(fractions >= min_tissue_fraction)
    origins_level = np.stack([column_index, row_index], axis=1).astype(np.int64) * span
    origins_px = np.rint(origins_level * level.downsample).astype(np.int64)
    return TilePlan(level, span, tile_size_px, span * level.mpp_x / tile_size_px, origins_px)


def _tissue_fractions(
    mask: BoolMask, grid: tuple[int, int], span: int, level: PyramidLevel
) -> npt.NDArray[np.float64]:
    """Per grid cell (rows, columns), the share of mask pixels whose centres fall in it (the
    mask pixel under the cell's centre where the mask is coarser than the grid)."""
    height_m, width_m = mask.shape
    integral = np.zeros((height_m + 1, width_m + 1), np.int64)
    integral[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    x0, x1 = (edge[None, :] for edge in _mask_ranges(grid[0], span, level.width_px, width_m))
    y0, y1 = (edge[:, None] for edge in _mask_ranges(grid[1], span, level.height_px, height_m))
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return np.asarray(inside / ((y1 - y0) * (x1 - x0)), np.float64)


def _mask_ranges(
    cells: int, span: int, level_px: int, mask_px: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per cell along one axis, the start and stop of the mask pixels whose centres fall in
    it; a cell that holds no centre gets the one mask pixel under its own centre."""
    bounds = np.arange(cells + 1, dtype=np.float64) * span * mask_px / level_px
    edges = np.clip(np.ceil(bounds - 0.5), 0, mask_px).astype(np.int64)
    start, stop = edges[:-1].copy(), edges[1:].copy()
    centres = np.clip(np.floor((bounds[:-1] + bounds[1:]) / 2), 0, mask_px - 1).astype(np.int64)
    empty = stop <= start
    start[empty], stop[empty] = centres[empty], centres[empty] + 1
    return start, stop


def iter_tile_batches(slide: SourceSlide, plan: TilePlan, batch_size: int) -> Iterator[TileBatch]:
    """The planned tiles, decoded and resampled, ``batch_size`` at a time (the last batch may
    be smaller). Each batch is a fresh array the caller may keep."""
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    reader = _RegionReader(slide, plan.level.index)
    size = plan.tile_size_px
    for start in range(0, len(plan.origins_px), batch_size):
        origins = plan.origins_px[start : start + batch_size]
        pixels = np.empty((len(origins), size, size, RGB_SAMPLES), np.uint8)
        for slot, (x0, y0) in enumerate(origins):
            x = round(x0 / plan.level.downsample)
            y = round(y0 / plan.level.downsample)
            pixels[slot] = resample_square(reader.read(x, y, plan.span_px), size)
        yield TileBatch(pixels, origins.copy())


def resample_square(region: Pixels, size_px: int) -> Pixels:
    """A square RGB ``region`` resampled to ``size_px`` a side, as every tile a model reads is:
    INTER_AREA averages the source pixels under each output pixel (the right filter for
    shrinking); enlarging (a source coarser than asked) is bilinear. The region itself when
    it is that size already."""
    span = region.shape[0]
    if region.shape[1] != span:
        raise ValueError(f"region {region.shape[1]}x{span} px is not square")
    if span == size_px:
        return region
    interpolation = cv2.INTER_AREA if span > size_px else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(region, (size_px, size_px), interpolation=interpolation))


class _RegionReader:
    """Square regions of one level, assembled from its decoded stored tiles."""

    def __init__(self, slide: SourceSlide, level_index: int) -> None:
        self._level = slide.levels[level_index]
        tile_bytes = self._level.tile_width * self._level.tile_height * RGB_SAMPLES
        self._cache: OrderedDict[int, Pixels] = OrderedDict()
        self._cache_tiles = max(4, DECODED_CACHE_BYTES // tile_bytes)

    def read(self, x: int, y: int, span: int) -> Pixels:
        """Level pixels ``[y, y + span) x [x, x + span)``, white past the level's edge."""
        level = self._level
        region = np.full((span, span, RGB_SAMPLES), BACKGROUND_RGB, np.uint8)
        tw, th = level.tile_width, level.tile_height
        x_end, y_end = min(x + span, level.width), min(y + span, level.height)
        for row in range(y // th, (y_end - 1) // th + 1 if y_end > y else y // th):
            for column in range(x // tw, (x_end - 1) // tw + 1 if x_end > x else x // tw):
                tile = self._tile(row * level.columns + column)
                left, top = column * tw, row * th
                sx0, sy0 = max(x, left), max(y, top)
                sx1, sy1 = min(x_end, left + tw), min(y_end, top + th)
                region[sy0 - y : sy1 - y, sx0 - x : sx1 - x] = tile[
                    sy0 - top : sy1 - top, sx0 - left : sx1 - left
                ]
        return region

    def _tile(self, index: int) -> Pixels:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        tile = self._level.decode(self._level.read_raw(index), index)
        self._cache[index] = tile
        if len(self._cache) > self._cache_tiles:
            self._cache.popitem(last=False)
        return tile

"""Out-of-focus tissue: a sharpness score per tile of the focus level (about 5x), tissue only.

The score is the variance of the Laplacian (Pech-Pacheco et al., ICPR 2000) over the tile's
tissue pixels, divided by their luminance variance so that faint and strong stains score alike
(defocus removes the high frequencies, not the stain contrast). Tiles are the level's own tiles
(about 0.5 mm at 2 µm/px), so nothing is decoded twice and the score is taken at one physical
scale whatever the scanner's resolution. Only tiles with tissue are read; above
:data:`MAX_FOCUS_TILES` a regular lattice of them (every k-th tissue tile in raster order: a
spatially stratified sample) is scored and the rest take their nearest scored neighbour's score.
The blurred fraction from n sampled tiles has a standard error of at most sqrt(p(1-p)/n), 5
points at n = 100 and p = 0.5 (less when blur lies in contiguous regions, as defocus does,
since a lattice sample is stratified).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc.masks import BoolMask
from slidestream_wsi.qc.pyramid import PyramidLevel

FOCUS_SCORE_MIN = 0.35
"""Normalised Laplacian energy (var ∇²I / var I, 1/px², at ~2 µm/px) below which a tile is out of
focus; sharp H&E scores 0.5-2, a 4 µm defocus blur scores under 0.2."""
TILE_TISSUE_MIN = 0.10
"""Least tissue fraction of a tile's footprint for it to be scored."""
MAX_FOCUS_TILES = 100
"""Most tiles scored per slide (26 mm² of tissue at 5x; a standard error of at most 5 points on
the blurred fraction above it). HistoQC scores every tile; each costs a read and a decode."""
MIN_TISSUE_PX_PER_TILE = 64

_INNER_ELEMENT = np.ones((5, 5), np.uint8)
"""Erosion that keeps a tile's score 2 px away from the tissue's edge."""

TileReader = Callable[[list[tuple[int, int]]], "list[tuple[int, int, npt.NDArray[np.uint8]]]"]


@dataclass(frozen=True, slots=True)
class FocusResult:
    scores: npt.NDArray[np.float32]
    """Score per tile of the focus level (rows x columns), NaN where no tissue."""
    blurred_fraction: float
    tiles_read: int
    tiles_total: int
    tiles_scored: int
    score_min: float
    level: PyramidLevel

    def grid_size_px(self, picture_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) in picture pixels that the whole tile grid spans."""
        rows, columns = self.scores.shape
        width, height = picture_size
        return (
            max(1, round(columns * self.level.tile_width_px * width / self.level.width_px)),
            max(1, round(rows * self.level.tile_height_px * height / self.level.height_px)),
        )


def tissue_tiles(tissue: BoolMask, level: PyramidLevel) -> npt.NDArray[np.float32]:
    """Tissue fraction of each tile of ``level``'s grid, from the analysis-level mask."""
    columns = math.ceil(level.width_px / level.tile_width_px)
    rows = math.ceil(level.height_px / level.tile_height_px)
    # Pad the mask to whole tiles so each tile covers the same share of it.
    scale_x = tissue.shape[1] / level.width_px
    scale_y = tissue.shape[0] / level.height_px
    padded_w = max(columns, round(columns * level.tile_width_px * scale_x))
    padded_h = max(rows, round(rows * level.tile_height_px * scale_y))
    padded = np.zeros((padded_h, padded_w), dtype=np.float32)
    h, w = min(padded_h, tissue.shape[0]), min(padded_w, tissue.shape[1])
    padded[:h, :w] = tissue[:h, :w]
    return np.asarray(cv2.resize(padded, (columns, rows), interpolation=cv2.INTER_AREA), np.float32)


def lattice(count: int, keep: int) -> list[int]:
    """``keep`` indices spread evenly over ``range(count)``."""
    if count <= keep:
        return list(range(count))
    step = count / keep
    return sorted({int(i * step) for i in range(keep)})


def sharpness(tile: npt.NDArray[np.uint8], mask: BoolMask | None) -> float | None:
    """Laplacian energy over luminance variance of the tile's tissue (``None``: the whole tile
    is tissue); ``tile`` is RGB or grey."""
    grey = tile if tile.ndim == 2 else np.asarray(cv2.cvtColor(tile, cv2.COLOR_RGB2GRAY), np.uint8)
    inner: npt.NDArray[np.uint8] | None = None
    if mask is not None:
        # The Laplacian at a tissue/glass boundary is large even when defocused: score inside.
        inner = np.asarray(cv2.erode(mask.view(np.uint8), _INNER_ELEMENT), np.uint8)
        if cv2.countNonZero(inner) < MIN_TISSUE_PX_PER_TILE:
            return None
    # Luminance 0-1 as HistoQC's float images; scaling inside the Laplacian avoids a float copy.
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=1, scale=1 / 255)
    _, laplacian_sd = cv2.meanStdDev(laplacian, mask=inner)
    _, grey_sd = cv2.meanStdDev(grey, mask=inner)
    variance = (float(grey_sd[0, 0]) / 255) ** 2
    return float(laplacian_sd[0, 0]) ** 2 / max(variance, 1e-4)


def measure_focus(
    tissue: BoolMask,
    level: PyramidLevel,
    read_tiles: TileReader,
    max_tiles: int = MAX_FOCUS_TILES,
    score_min: float = FOCUS_SCORE_MIN,
) -> FocusResult:
    fractions = tissue_tiles(tissue, level)
    rows, columns = fractions.shape
    candidates = [
        (row, column)
        for row in range(rows)
        for column in range(columns)
        if fractions[row, column] >= TILE_TISSUE_MIN
    ]
    chosen = [candidates[i] for i in lattice(len(candidates), max_tiles)]
    origins = [(column * level.tile_width_px, row * level.tile_height_px) for row, column in chosen]
    scores = np.full((rows, columns), np.nan, dtype=np.float32)
    scale_x = tissue.shape[1] / level.width_px
    scale_y = tissue.shape[0] / level.height_px
    for x, y, tile in read_tiles(origins):
        x0, y0 = int(x * scale_x), int(y * scale_y)
        x1 = max(x0 + 1, int((x + tile.shape[1]) * scale_x))
        y1 = max(y0 + 1, int((y + tile.shape[0]) * scale_y))
        crop = tissue[y0:y1, x0:x1]
        if crop.all():
            score = sharpness(tile, None)  # all tissue: no mask to bring to the tile's size
        else:
            mask = cv2.resize(
                crop.view(np.uint8), (tile.shape[1], tile.shape[0]), interpolation=cv2.INTER_NEAREST
            )
            score = sharpness(tile, np.asarray(mask).view(np.bool_))
        if score is not None:
            scores[y // level.tile_height_px, x // level.tile_width_px] = score
    scored = ~np.isnan(scores)
    if 0 < scored.sum() < len(candidates):
        scores = _fill_from_nearest(scores, [(r, c) for r, c in candidates])
    weights = np.where(~np.isnan(scores), fractions, 0.0)
    blurred = np.where(~np.isnan(scores) & (scores < score_min), fractions, 0.0)
    total = float(weights.sum())
    return FocusResult(
        scores=scores,
        blurred_fraction=float(blurred.sum()) / total if total > 0 else 0.0,
        tiles_read=len(origins),
        tiles_total=rows * columns,
        tiles_scored=int(scored.sum()),
        score_min=score_min,
        level=level,
    )


def _fill_from_nearest(
    scores: npt.NDArray[np.float32], cells: list[tuple[int, int]]
) -> npt.NDArray[np.float32]:
    known = np.argwhere(~np.isnan(scores))
    filled = scores.copy()
    for row, column in cells:
        if np.isnan(filled[row, column]):
            distances = np.abs(known - (row, column)).sum(axis=1)
            near = known[int(distances.argmin())]
            filled[row, column] = scores[near[0], near[1]]
    return filled

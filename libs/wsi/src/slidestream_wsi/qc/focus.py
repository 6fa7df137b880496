"""Out-of-focus tissue: a sharpness score per 64 µm patch of tissue, read at about 10x.

**Where.** A Gaussian defocus of sigma = 2 µm is one pixel at 5x and all but vanishes there, so
focus is judged on the coarsest level at or finer than 1 µm/px (:data:`FOCUS_TARGET_MPP`),
resampled to 1 µm/px when finer; only tissue tiles are read, as many as the sampling rule of
:mod:`slidestream_wsi.qc.focus_sampling` asks.

**The score.** Within each patch's tissue (the analysis mask, eroded so that the step from
tissue to glass stays out) the variance of the second difference along four directions (0°,
45°, 90°, 135°; the Laplacian split by direction, Pech-Pacheco et al., ICPR 2000) is divided
by the patch's luminance variance, so faint and strong stains score alike. A patch is out of
focus when the mean over the directions falls below the score of the tenant's defocus limit
(:func:`score_min_for`: sigma in µm through :data:`DEFOCUS_CALIBRATION`), or when the weakest
direction keeps under :data:`ANISOTROPY_MIN` of the strongest: a streak along one axis (stage
motion, a stitching seam) leaves the other directions sharp.

**The number and the picture.** Both come from the same scored patches: the blurred share is a
ratio estimate over the scored tiles with its 95 % interval, and the heat map colours exactly
those patches, leaving unscored tissue uncoloured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc.focus_sampling import (
    ShareEstimate,
    ratio_estimate,
    sample_size,
    spread_sample,
)
from slidestream_wsi.qc.levels import FOCUS_TARGET_MPP, level_mpp
from slidestream_wsi.qc.masks import BoolMask
from slidestream_wsi.qc.pyramid import PyramidLevel

PATCH_UM: Final = 64.0
"""Side of a scored patch: a few cells across, 64 px at 1 µm/px."""
TILE_TISSUE_MIN: Final = 0.10
"""Least tissue fraction of a tile's footprint for it to be a candidate."""
PATCH_TISSUE_MIN: Final = 0.5
"""Least share of a patch that must be tissue (after erosion) for it to be scored."""
LUMINANCE_VARIANCE_FLOOR: Final = 1e-4
"""Luminance variance (grey 0-1) under which a patch counts as flat, not as sharp."""
ANISOTROPY_MIN: Final = 0.18
"""Weakest over strongest directional energy under which a patch is streaked along one axis.
Sharp generated tissue of every type keeps above 0.20 (H&E above 0.31); an 8 µm motion streak
brings H&E to 0.18 at most, a 10 µm one to 0.15 (per patch, as :data:`DEFOCUS_CALIBRATION`)."""
DEFOCUS_CALIBRATION: Final[tuple[tuple[float, float], ...]] = (
    (0.0, 0.240),
    (0.5, 0.103),
    (0.75, 0.053),
    (1.0, 0.037),
    (1.5, 0.0225),
    (2.0, 0.0159),
    (4.0, 0.0079),
)
"""(Gaussian defocus sigma in µm, median patch score) of the generator's H&E tissue at 1 µm/px
(``slidestream_samples.qc_bench`` seed tiles: sensor noise after the blur, JPEG quality 85);
re-measured by ``tests/unit/wsi/qc/test_focus_calibration.py``. Sharp patches score 0.19-0.40,
a 1 µm defocus 0.029-0.045, 2 µm 0.012-0.024, 4 µm 0.004-0.017."""
DEFAULT_DEFOCUS_SIGMA_UM: Final = 0.6
"""The defocus from which tissue counts as out of focus: score 0.079, 2.4x under the least sharp
patch and 1.7x over the most a 1 µm defocus leaves (QcThresholds.blur_defocus_sigma_um)."""

TileReader = Callable[[list[tuple[int, int]]], "list[tuple[int, int, npt.NDArray[np.uint8]]]"]

_DIRECTIONS: Final = tuple(
    np.asarray(kernel, np.float32) / scale
    for kernel, scale in (
        ([[0, 0, 0], [1, -2, 1], [0, 0, 0]], 1.0),
        ([[0, 1, 0], [0, -2, 0], [0, 1, 0]], 1.0),
        # Diagonal neighbours lie √2 apart: a second difference over √2² = 2.
        ([[1, 0, 0], [0, -2, 0], [0, 0, 1]], 2.0),
        ([[0, 0, 1], [0, -2, 0], [1, 0, 0]], 2.0),
    )
)


def score_min_for(defocus_sigma_um: float) -> float:
    """The patch score of a Gaussian defocus of ``defocus_sigma_um`` (log-linear between the
    calibration points, clamped to their range)."""
    sigmas = [sigma for sigma, _ in DEFOCUS_CALIBRATION]
    scores = [math.log(score) for _, score in DEFOCUS_CALIBRATION]
    return math.exp(float(np.interp(defocus_sigma_um, sigmas, scores)))


@dataclass(frozen=True, slots=True)
class FocusResult:
    scores: npt.NDArray[np.float32]
    """Focus margin per patch (rows x columns of patches over the level's tile grid): the lesser
    of score over its minimum and anisotropy over its minimum; under 1 is out of focus; NaN
    where no patch was scored."""
    patches_per_tile: tuple[int, int]
    """(across, down) patches in one tile of the focus level."""
    estimate: ShareEstimate
    tiles_read: int
    tiles_total: int
    score_min: float
    defocus_sigma_um: float
    work_mpp: float
    """µm/px the patches were scored at."""
    level: PyramidLevel

    @property
    def blurred_fraction(self) -> float:
        return self.estimate.share

    @property
    def patches_scored(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.scores)))

    def grid_size_px(self, picture_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) in picture pixels that the whole patch grid spans."""
        across, down = self.patches_per_tile
        rows, columns = self.scores.shape
        width, height = picture_size
        tile_w, tile_h = self.level.tile_width_px, self.level.tile_height_px
        return (
            max(1, round(columns / across * tile_w * width / self.level.width_px)),
            max(1, round(rows / down * tile_h * height / self.level.height_px)),
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


@dataclass(frozen=True, slots=True)
class PatchScores:
    energy: npt.NDArray[np.float32]
    """Mean directional energy over luminance variance per patch (NaN: not scored)."""
    anisotropy: npt.NDArray[np.float32]
    tissue: npt.NDArray[np.float32]
    """Tissue share of each patch (0-1, before erosion)."""


def _patch_means(values: npt.NDArray[np.float32], grid: tuple[int, int]) -> npt.NDArray[np.float32]:
    # Area interpolation to the patch grid is the mean over each patch (of every channel).
    return np.asarray(cv2.resize(values, grid, interpolation=cv2.INTER_AREA), np.float32)


def _square(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.multiply(values, values), np.float32)


def score_patches(
    grey: npt.NDArray[np.uint8],
    tissue: npt.NDArray[np.uint8],
    inner: npt.NDArray[np.uint8],
    grid: tuple[int, int],
) -> PatchScores:
    """Scores of the (across, down) ``grid`` of patches of one tile at the working spacing:
    ``tissue`` and ``inner`` (the eroded tissue) are 0/1 masks of the tile's size."""
    luminance = np.asarray(grey, np.float32) * np.float32(1 / 255)
    whole = bool(inner.all())
    weight = None if whole else np.asarray(inner, np.float32)
    inside = (
        np.ones((grid[1], grid[0]), np.float32) if weight is None else _patch_means(weight, grid)
    )
    safe = np.maximum(inside, np.float32(1e-6))

    def mean_of(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if weight is not None:
            values = np.asarray(cv2.multiply(values, weight), np.float32)
        return np.asarray(_patch_means(values, grid) / safe, np.float32)

    # A second difference sums to about zero over a patch: its energy is its mean square.
    energies = np.stack(
        [
            mean_of(_square(np.asarray(cv2.filter2D(luminance, cv2.CV_32F, kernel), np.float32)))
            for kernel in _DIRECTIONS
        ]
    )
    variance = np.maximum(
        mean_of(_square(luminance)) - mean_of(luminance) ** 2, LUMINANCE_VARIANCE_FLOOR
    )
    scored = inside >= PATCH_TISSUE_MIN
    energy = np.where(scored, energies.mean(axis=0) / variance, np.nan).astype(np.float32)
    anisotropy = energies.min(axis=0) / np.maximum(energies.max(axis=0), 1e-12)
    tissue_share = inside if whole else _patch_means(np.asarray(tissue, np.float32), grid)
    return PatchScores(energy, anisotropy.astype(np.float32), tissue_share)


@dataclass(frozen=True, slots=True)
class _Geometry:
    """How a tile of the focus level maps to the working spacing, its patches and the mask."""

    level: PyramidLevel
    work_scale: float
    """Working pixels per level pixel (1, or under 1 when the level is finer than 1 µm/px)."""
    grid: tuple[int, int]
    mask_scale: tuple[float, float]
    """Analysis-mask pixels per level pixel, (x, y)."""
    erosion: npt.NDArray[np.uint8]

    @classmethod
    def of(cls, level: PyramidLevel, tissue: BoolMask) -> _Geometry:
        spacing = level_mpp(level)
        work_scale = spacing / FOCUS_TARGET_MPP if spacing < FOCUS_TARGET_MPP * 0.95 else 1.0
        grid = (
            max(1, round(level.tile_width_px * spacing / PATCH_UM)),
            max(1, round(level.tile_height_px * spacing / PATCH_UM)),
        )
        mask_scale = (tissue.shape[1] / level.width_px, tissue.shape[0] / level.height_px)
        # The mask's edge is good to one of its pixels: keep that far (and the kernel's reach)
        # inside it, where a tissue/glass step cannot pass for sharp detail.
        radius = math.ceil(work_scale / mask_scale[0]) + 1
        erosion = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
        return cls(level, work_scale, grid, mask_scale, np.asarray(erosion, np.uint8))

    @property
    def work_mpp(self) -> float:
        return level_mpp(self.level) / self.work_scale

    @staticmethod
    def _all_tissue(tissue: BoolMask, x0: int, y0: int, x1: int, y1: int) -> bool:
        """Tissue over the tile's footprint and two mask pixels round it (past erosion's reach)."""
        if x0 < 2 or y0 < 2 or x1 + 2 > tissue.shape[1] or y1 + 2 > tissue.shape[0]:
            return False
        return bool(tissue[y0 - 2 : y1 + 2, x0 - 2 : x1 + 2].all())

    def prepare(
        self, x: int, y: int, tile: npt.NDArray[np.uint8], tissue: BoolMask
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """The tile's grey image, tissue and eroded tissue at the working spacing, padded to a
        whole tile (a level's last row and column of tiles may be cut short)."""
        tile_w, tile_h = self.level.tile_width_px, self.level.tile_height_px
        grey = tile if tile.ndim == 2 else cv2.cvtColor(tile, cv2.COLOR_RGB2GRAY)
        padded = np.zeros((tile_h, tile_w), np.uint8)
        h, w = min(tile_h, grey.shape[0]), min(tile_w, grey.shape[1])
        padded[:h, :w] = grey[:h, :w]
        scale_x, scale_y = self.mask_scale
        x0, y0 = int(x * scale_x), int(y * scale_y)
        x1, y1 = max(x0 + 1, int((x + tile_w) * scale_x)), max(y0 + 1, int((y + tile_h) * scale_y))
        inside = tissue[y0:y1, x0:x1]
        if h == tile_h and w == tile_w and self._all_tissue(tissue, x0, y0, x1, y1):
            ones = np.ones(padded.shape, np.uint8) if self.work_scale == 1.0 else None
            if ones is None:
                size = (round(tile_w * self.work_scale), round(tile_h * self.work_scale))
                padded = np.asarray(
                    cv2.resize(padded, size, interpolation=cv2.INTER_AREA), np.uint8
                )
                ones = np.ones(padded.shape, np.uint8)
            return padded, ones, ones
        crop = np.zeros((y1 - y0, x1 - x0), np.uint8)
        crop[: inside.shape[0], : inside.shape[1]] = inside
        mask = np.asarray(cv2.resize(crop, (tile_w, tile_h), interpolation=cv2.INTER_NEAREST))
        mask[h:, :] = 0
        mask[:, w:] = 0
        if self.work_scale < 1.0:
            size = (round(tile_w * self.work_scale), round(tile_h * self.work_scale))
            padded = np.asarray(cv2.resize(padded, size, interpolation=cv2.INTER_AREA), np.uint8)
            mask = np.asarray(cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), np.uint8)
        inner = cv2.erode(mask, self.erosion)
        return np.asarray(padded, np.uint8), np.asarray(mask, np.uint8), np.asarray(inner, np.uint8)


def measure_focus(
    tissue: BoolMask,
    level: PyramidLevel,
    read_tiles: TileReader,
    defocus_sigma_um: float = DEFAULT_DEFOCUS_SIGMA_UM,
    tiles_to_score: Callable[[int], int] = sample_size,
) -> FocusResult:
    """Score the sampled tissue tiles of ``level`` and estimate the blurred share of tissue;
    ``tiles_to_score`` sizes the sample from the count of tissue tiles (the rule of
    :func:`~slidestream_wsi.qc.focus_sampling.sample_size`)."""
    fractions = tissue_tiles(tissue, level)
    rows, columns = fractions.shape
    candidates = [
        (row, column)
        for row in range(rows)
        for column in range(columns)
        if fractions[row, column] >= TILE_TISSUE_MIN
    ]
    chosen = spread_sample(candidates, tiles_to_score(len(candidates)))
    origins = [(column * level.tile_width_px, row * level.tile_height_px) for row, column in chosen]
    geometry = _Geometry.of(level, tissue)
    across, down = geometry.grid
    score_min = score_min_for(defocus_sigma_um)
    margins = np.full((rows * down, columns * across), np.nan, np.float32)
    scored_tissue, blurred_tissue = [], []
    for x, y, tile in read_tiles(origins):
        patches = score_patches(*geometry.prepare(x, y, tile, tissue), geometry.grid)
        margin = np.minimum(patches.energy / score_min, patches.anisotropy / ANISOTROPY_MIN)
        scored = ~np.isnan(margin)
        row, column = y // level.tile_height_px, x // level.tile_width_px
        margins[row * down : (row + 1) * down, column * across : (column + 1) * across] = margin
        scored_tissue.append(float(patches.tissue[scored].sum()))
        blurred_tissue.append(float(patches.tissue[scored & (margin < 1.0)].sum()))
    estimate = ratio_estimate(
        np.asarray(scored_tissue, np.float64),
        np.asarray(blurred_tissue, np.float64),
        len(candidates),
    )
    return FocusResult(
        scores=margins,
        patches_per_tile=geometry.grid,
        estimate=estimate,
        tiles_read=len(origins),
        tiles_total=rows * columns,
        score_min=score_min,
        defocus_sigma_um=defocus_sigma_um,
        work_mpp=geometry.work_mpp,
        level=level,
    )

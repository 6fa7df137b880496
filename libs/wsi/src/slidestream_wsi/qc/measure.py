"""The measures of the analysis level, from its :class:`~slidestream_wsi.qc.segment.Segmentation`:

* areas: the share of the slide (or of tissue) each mask covers;
* glass: brightness and unevenness over a grid (illumination / vignetting artefacts), and
  brightness, RMS contrast, saturation and clipping of tissue (HistoQC BrightContrastModule);
* folds: tissue whose optical density is well above the slide's own median tissue density
  (two layers of section absorb twice: Beer-Lambert), cf. Bautista & Yagi 2010;
* stain: :mod:`~slidestream_wsi.qc.stain`.

:func:`measure` returns them typed; :meth:`Measures.values` names them as the report does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc.masks import (
    BoolMask,
    UInt8Image,
    as_f32,
    as_u8,
    disk,
    drop_small,
    fill_holes,
    grey_percentile,
    px_of_mm2,
    px_of_um,
    square,
)
from slidestream_wsi.qc.segment import Segmentation
from slidestream_wsi.qc.stain import (
    RUIFROK_EOSIN,
    RUIFROK_HEMATOXYLIN,
    StainVector,
    angle_deg,
    channel_max,
    macenko_vectors,
    optical_density,
    rgb_to_hed,
    tissue_sample,
)

FOLD_DENSITY_RATIO = 1.45
"""Optical density over the slide's median tissue density that marks a fold (2 = two layers;
single-layer H&E stays under 1.3 at its 95th percentile once smoothed)."""
FOLD_SMOOTHING_UM = 10.0
"""Gaussian sigma applied to the density first, so nuclei do not count as folds."""
MIN_FOLD_AREA_MM2 = 0.005
"""Smallest fold kept (about 70 µm across)."""
BACKGROUND_GRID_CELLS = 8
"""Cells along each side of the grid the glass unevenness is measured over."""
GLASS_SAMPLE_PIXELS = 20_000
"""Glass pixels sampled (a deterministic stride) for the glass's median colour."""
MIN_MEASURED_PX = 100
"""Fewest pixels of glass or tissue a measure of them is taken on."""


@dataclass(frozen=True, slots=True)
class AreaMeasures:
    """Shares of the slide (or of tissue) the masks cover, and counts of what they hold."""

    tissue_fraction: float
    tissue_area_mm2: float
    tissue_fragments: int
    pen_fraction: float
    pen_on_tissue_fraction: float
    pen_blue_fraction: float
    pen_green_fraction: float
    pen_black_fraction: float
    pen_red_fraction: float
    dark_spot_fraction: float
    bubble_fraction: float
    coverslip_edge_count: int


@dataclass(frozen=True, slots=True)
class GlassMeasures:
    """The bare glass, when there is enough of it."""

    background_brightness: float
    background_unevenness: float


@dataclass(frozen=True, slots=True)
class TissueMeasures:
    """Folds, colour and stain of the tissue, when there is tissue."""

    fold_fraction: float
    tissue_brightness: float
    tissue_contrast: float
    tissue_saturation: float
    tissue_clipped_fraction: float
    hematoxylin_density: float
    eosin_density: float
    hematoxylin_angle_deg: float | None
    """None with too little stained tissue for stain vectors."""
    eosin_angle_deg: float | None


@dataclass(frozen=True, slots=True)
class Measures:
    """Every measure of one slide; a group is None when it could not be taken."""

    areas: AreaMeasures
    glass: GlassMeasures | None
    tissue: TissueMeasures | None
    blur_fraction: float | None = None
    """Measured on the focus level (:mod:`~slidestream_wsi.qc.focus`), not here."""

    def values(self) -> dict[str, float]:
        """The measures taken, by their field names: the report's measure names."""
        taken: dict[str, float] = {}
        for group in (self.areas, self.glass, self.tissue):
            if group is None:
                continue
            for item in fields(group):
                value = getattr(group, item.name)
                if value is not None:
                    taken[item.name] = float(value)
        if self.blur_fraction is not None:
            taken["blur_fraction"] = self.blur_fraction
        return taken


@dataclass(frozen=True, slots=True)
class Measurement:
    """What :func:`measure` found beyond the segmentation."""

    measures: Measures
    fold: BoolMask
    dark_spot: BoolMask
    """The segmentation's dark spots less the specks inside folds (nuclei of a fold)."""
    stain_vectors: tuple[StainVector, StainVector] | None
    notes: tuple[str, ...]


def measure(segmentation: Segmentation, level_rgb: UInt8Image) -> Measurement:
    """Every measure of the analysis level; ``level_rgb`` is the level :func:`segment` was
    given (colour and stain are measured on its own pixels)."""
    notes: list[str] = []
    glass = _glass_measures(segmentation)
    if glass is None:
        notes.append("too little bare glass to judge background and illumination")
    if int(segmentation.tissue.sum()) < MIN_MEASURED_PX:
        notes.append("no tissue: colour, fold, stain and focus measures not taken")
        measures = Measures(_areas(segmentation, segmentation.dark_spot), glass, None)
        fold = np.zeros_like(segmentation.tissue)
        return Measurement(measures, fold, segmentation.dark_spot, None, tuple(notes))
    glass_rgb = _glass_rgb(segmentation.smooth, segmentation.background)
    fold = _fold(segmentation, glass_rgb)
    # Nuclei inside a fold are as dark as debris: specks there belong to the fold.
    near_fold = cv2.dilate(fold.astype(np.uint8), disk(px_of_um(20, segmentation.mpp_um))) > 0
    dark_spot = segmentation.dark_spot & ~near_fold
    tissue, vectors = _tissue_measures(segmentation, level_rgb, fold, glass_rgb)
    if vectors is None:
        notes.append("too little stained tissue to estimate stain vectors")
    measures = Measures(_areas(segmentation, dark_spot), glass, tissue)
    return Measurement(measures, fold, dark_spot, vectors, tuple(notes))


def _areas(segmentation: Segmentation, dark_spot: BoolMask) -> AreaMeasures:
    tissue, pen, mpp_um = segmentation.tissue, segmentation.pen, segmentation.mpp_um
    pen_any = segmentation.pen_any
    tissue_px = int(tissue.sum())
    # A square element: OpenCV erodes and dilates with rectangles in time independent of size.
    tissue_region = fill_holes(
        cv2.morphologyEx(tissue.astype(np.uint8), cv2.MORPH_CLOSE, square(px_of_um(200, mpp_um)))
        > 0,
        tissue.size,
    )
    inked_tissue = int((pen_any & tissue_region).sum())
    return AreaMeasures(
        tissue_fraction=tissue_px / tissue.size,
        tissue_area_mm2=tissue_px * (mpp_um * mpp_um / 1e6),
        tissue_fragments=segmentation.tissue_fragments,
        pen_fraction=float(pen_any.mean()),
        pen_on_tissue_fraction=inked_tissue / max(1, tissue_px + inked_tissue),
        pen_blue_fraction=float(pen["blue"].mean()),
        pen_green_fraction=float(pen["green"].mean()),
        pen_black_fraction=float(pen["black"].mean()),
        pen_red_fraction=float(pen["red"].mean()),
        dark_spot_fraction=float(dark_spot.mean()),
        bubble_fraction=float(segmentation.bubble.mean()),
        coverslip_edge_count=len(segmentation.coverslip_edges),
    )


def _glass_measures(segmentation: Segmentation) -> GlassMeasures | None:
    grey, background = segmentation.grey, segmentation.background
    if background.sum() < MIN_MEASURED_PX:
        return None
    return GlassMeasures(
        background_brightness=float(cv2.mean(grey, background.view(np.uint8))[0]) / 255,
        background_unevenness=_unevenness(grey, background),
    )


def _unevenness(grey: UInt8Image, background: BoolMask) -> float:
    height, width = grey.shape
    mask = background.view(np.uint8)
    medians: list[float] = []
    for row in range(BACKGROUND_GRID_CELLS):
        for column in range(BACKGROUND_GRID_CELLS):
            ys = slice(
                row * height // BACKGROUND_GRID_CELLS, (row + 1) * height // BACKGROUND_GRID_CELLS
            )
            xs = slice(
                column * width // BACKGROUND_GRID_CELLS,
                (column + 1) * width // BACKGROUND_GRID_CELLS,
            )
            cell = background[ys, xs]
            if cell.size and cv2.countNonZero(mask[ys, xs]) >= 0.25 * cell.size:
                medians.append(grey_percentile(grey[ys, xs], cell, 50))
    if len(medians) < 2:
        return 0.0
    return float(np.percentile(medians, 95) - np.percentile(medians, 5))


def _glass_rgb(rgb: UInt8Image, background: BoolMask) -> npt.NDArray[np.float32] | None:
    where = np.flatnonzero(background)
    if len(where) < MIN_MEASURED_PX:
        return None
    # A regular sample of the glass is enough for its median colour.
    sample = rgb.reshape(-1, 3)[where[:: max(1, len(where) // GLASS_SAMPLE_PIXELS)]]
    return as_f32(np.median(sample, axis=0))


def _fold(segmentation: Segmentation, glass_rgb: npt.NDArray[np.float32] | None) -> BoolMask:
    """Tissue at least :data:`FOLD_DENSITY_RATIO` times denser than the slide's median tissue."""
    tissue, mpp_um = segmentation.tissue, segmentation.mpp_um
    od = optical_density(segmentation.smooth, segmentation.glass_luminance, glass_rgb)
    # The sum of the three channels' densities (cv2.transform: NumPy's sum over the last axis
    # of an image is twenty times slower).
    od_sum = cv2.transform(od, np.ones((1, 3), np.float32))
    density = cv2.GaussianBlur(od_sum, (0, 0), FOLD_SMOOTHING_UM / mpp_um)
    median_density = float(np.median(density[tissue]))
    fold = tissue & (density >= FOLD_DENSITY_RATIO * median_density)
    fold = cv2.morphologyEx(fold.astype(np.uint8), cv2.MORPH_OPEN, disk(px_of_um(4, mpp_um))) > 0
    kept, _ = drop_small(fold, px_of_mm2(MIN_FOLD_AREA_MM2, mpp_um))
    return kept


def _tissue_measures(
    segmentation: Segmentation,
    level_rgb: UInt8Image,
    fold: BoolMask,
    glass_rgb: npt.NDArray[np.float32] | None,
) -> tuple[TissueMeasures, tuple[StainVector, StainVector] | None]:
    """Colour and stain are measured on the level's own pixels, sampled over the tissue mask:
    averaging them to the working spacing would blend nuclei into stroma (less contrast, a
    haematoxylin vector pulled towards eosin)."""
    tissue = segmentation.tissue
    raw, smooth_raw, suited = tissue_sample(level_rgb, segmentation.smooth, tissue, fold)
    raw_px = raw.reshape(-1, 1, 3)
    raw_gray = as_u8(cv2.cvtColor(raw_px, cv2.COLOR_RGB2GRAY)).astype(np.float32) / 255
    raw_hsv_s = as_u8(cv2.cvtColor(raw_px, cv2.COLOR_RGB2HSV))[:, :, 1].astype(np.float32) / 255
    glass = segmentation.glass_luminance
    tissue_od = optical_density(smooth_raw.reshape(-1, 1, 3), glass, glass_rgb).reshape(-1, 3)
    vectors = macenko_vectors(np.compress(suited, tissue_od, axis=0))
    hed = rgb_to_hed(raw)
    h_angle = e_angle = None
    if vectors is not None:
        h_angle = angle_deg(vectors[0], RUIFROK_HEMATOXYLIN)
        e_angle = angle_deg(vectors[1], RUIFROK_EOSIN)
    measures = TissueMeasures(
        fold_fraction=float(fold.sum()) / int(tissue.sum()),
        tissue_brightness=float(raw_gray.mean()),
        tissue_contrast=float(raw_gray.std()),
        tissue_saturation=float(raw_hsv_s.mean()),
        tissue_clipped_fraction=float(np.mean(channel_max(raw) == 255)),
        hematoxylin_density=float(hed[:, 0].mean()),
        eosin_density=float(hed[:, 1].mean()),
        hematoxylin_angle_deg=h_angle,
        eosin_angle_deg=e_angle,
    )
    return measures, vectors

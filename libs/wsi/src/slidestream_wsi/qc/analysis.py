"""The measures taken on the analysis level (about 1.25x-2.5x, decoded whole).

Each mask is a boolean array the size of the analysis level. Sizes are given in micrometres and
square millimetres and turned into pixels with the level's spacing, so the same thresholds hold
for every scanner. The methods are the classical ones HistoQC and GrandQC are compared against:

* tissue: saturation or darkness against the glass (HistoQC's LightDark and saturation
  modules), with the glass level measured on the slide itself so exposure shifts do not move
  it;
* pen: hue/saturation windows per ink colour (HistoQC PenMarkingModule; the deep-histopath
  RGB ink filters), kept only as connected strokes of a minimum area;
* folds: tissue whose optical density is well above the slide's own median tissue density
  (two layers of section absorb twice: Beer-Lambert), cf. Bautista & Yagi 2010;
* dark spots: small very dark specks (debris, dust); large ones are black ink;
* air bubbles and coverslip edges: thin dark lines (morphological black-hat): closed round
  ones enclose a bubble, long straight ones (Hough) are edges;
* brightness, RMS contrast, saturation, clipping (HistoQC BrightContrastModule);
* glass unevenness over a grid (illumination / vignetting artefacts);
* stain vectors by Macenko et al. (ISBI 2009) against Ruifrok & Johnston's H&E (2001), and
  mean haematoxylin / eosin density by colour deconvolution (the transform of scikit-image's
  ``rgb2hed``, same matrix, same log scaling; a test holds the two equal).

The level is first area-averaged to :data:`WORK_MPP` (about 16 µm/px, HistoQC's 0.625x) while
its long side stays at least :data:`WORK_MIN_LONG_SIDE_PX`: every measure here is of structures
of 40 µm and more, and the morphology and Hough transforms cost in proportion to the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

BoolMask = npt.NDArray[np.bool_]
UInt8Image = npt.NDArray[np.uint8]

WORK_MPP = 16.0
"""µm/px the analysis level is area-averaged down to before measuring (if coarser than it)."""
WORK_MIN_LONG_SIDE_PX = 768
"""Fewest pixels on the long side of the working image: a small biopsy keeps its detail."""
SATURATION_TISSUE_MIN = 0.08
"""HSV saturation (0-1) above which a pixel is stained tissue (glass is near 0)."""
DARKNESS_TISSUE_RATIO = 0.88
"""A pixel darker than this fraction of the glass luminance is tissue even if unsaturated."""
MIN_FRAGMENT_AREA_MM2 = 0.01
"""Smallest tissue piece counted (about 100 µm across): smaller specks are debris."""
MIN_PEN_AREA_MM2 = 0.02
"""Smallest ink stroke kept (a 0.1 x 0.2 mm dab)."""
MIN_BLACK_INK_AREA_MM2 = 0.1
"""Dark components at least this large are black ink; smaller ones are dark spots."""
DARK_LUMINANCE_RATIO = 0.30
"""A pixel darker than this fraction of the glass luminance is ink-black."""
FOLD_DENSITY_RATIO = 1.45
"""Optical density over the slide's median tissue density that marks a fold (2 = two layers;
single-layer H&E stays under 1.3 at its 95th percentile once smoothed)."""
FOLD_SMOOTHING_UM = 10.0
"""Gaussian sigma applied to the density first, so nuclei do not count as folds."""
MIN_FOLD_AREA_MM2 = 0.005
"""Smallest fold kept (about 70 µm across)."""
LINE_WIDTH_MAX_UM = 150.0
"""Widest dark line taken for a bubble rim or a coverslip edge."""
LINE_BLACKHAT_MIN = 0.10
"""Least depth of a dark line under its surroundings, in luminance 0-1."""
LINE_SATURATION_MAX = 0.25
"""Bubble rims and coverslip edges are grey (refraction), not stained."""
MIN_BUBBLE_RADIUS_UM = 80.0
HOUGH_MPP = 16.0
"""µm/px at which circle candidates are sought (an 80 µm bubble is 5 px across in radius)."""
MAX_BUBBLE_RADIUS_UM = 2500.0
"""Largest bubble radius searched for (a 5 mm bubble): the circle Hough transform's time grows
with the radius range; a larger trapped-air region shows as glass inside tissue and lines."""
BUBBLE_RIM_COVERAGE_MIN = 0.7
"""Share of a candidate circle's circumference along which its rim must be darker than both
sides for it to count as a bubble (a rim may fade where the bubble lies over tissue)."""
COVERSLIP_EDGE_MIN_LENGTH = 0.25
"""Shortest straight edge counted, as a fraction of the slide's shorter side."""
BACKGROUND_GRID_CELLS = 8
"""Cells along each side of the grid the glass unevenness is measured over."""
STAIN_OD_MIN = 0.15
"""Macenko's β: pixels with an optical density below it in any channel are ignored."""
STAIN_PERCENTILE = 1.0
"""Macenko's α, in percent: the robust extremes of the angle distribution."""
RUIFROK_HEMATOXYLIN = (0.650, 0.704, 0.286)
RUIFROK_EOSIN = (0.072, 0.990, 0.105)
HED_FROM_RGB = np.linalg.inv(
    np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float64)
).astype(np.float32)
"""Colour deconvolution (Ruifrok & Johnston 2001) as scikit-image's ``hed_from_rgb``: the inverse
of their H, E and DAB vectors to two decimals. Computed here because importing
``skimage.color`` takes about a second (SciPy with it), longer than the whole QC call."""
STAIN_MAX_PIXELS = 200_000
"""Tissue pixels of the level sampled (a regular grid) for colour, stain and density."""
GLASS_SAMPLE_PIXELS = 20_000
"""Glass pixels sampled (a deterministic stride) for the glass's median colour."""

# Ink windows in OpenCV's HSV (H 0-179 = hue/2, S and V 0-255).
PEN_WINDOWS: dict[str, tuple[tuple[int, int, int, int, int, int], ...]] = {
    # Blue ink sits at 190-250°; haematoxylin's purple is 260-300° and stays outside.
    "blue": ((95, 125, 100, 255, 40, 255),),
    "green": ((35, 94, 64, 255, 30, 255),),
    # Red ink is a deep, saturated red; eosin and red blood cells are pinker (320-345°).
    "red": ((0, 6, 150, 255, 60, 255), (174, 179, 150, 255, 60, 255)),
}
PEN_COLOURS = ("blue", "green", "black", "red")


@dataclass(frozen=True, slots=True)
class CoverslipEdge:
    x0: int
    y0: int
    x1: int
    y1: int


@dataclass(slots=True)
class Analysis:
    """Masks and measures of the analysis level, all the size of :attr:`image`."""

    image: UInt8Image
    """The analysis level as measured: area-averaged to the working spacing :attr:`mpp_um`."""
    smooth: UInt8Image
    """:attr:`image` median-filtered (3x3): JPEG noise and single-pixel specks removed."""
    grey: UInt8Image
    """BT.601 luma of :attr:`smooth`, 0-255."""
    mpp_um: float
    tissue: BoolMask
    pen: dict[str, BoolMask]
    fold: BoolMask
    dark_spot: BoolMask
    bubble: BoolMask
    lines: BoolMask
    background: BoolMask
    coverslip_edges: list[CoverslipEdge]
    glass_luminance: float
    values: dict[str, float] = field(default_factory=dict)
    stain_vectors: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pen_any(self) -> BoolMask:
        out = np.zeros_like(self.tissue)
        for mask in self.pen.values():
            out |= mask
        return out


def px_of_um(length_um: float, mpp_um: float) -> int:
    return max(1, round(length_um / mpp_um))


def px_of_mm2(area_mm2: float, mpp_um: float) -> int:
    return max(1, round(area_mm2 * 1e6 / (mpp_um * mpp_um)))


def disk(radius_px: int) -> npt.NDArray[np.uint8]:
    size = 2 * radius_px + 1
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), np.uint8)


def as_u8(image: object) -> UInt8Image:
    """An OpenCV result as the uint8 array it is (OpenCV's stubs type results loosely)."""
    return np.asarray(image, dtype=np.uint8)


def as_f32(image: object) -> npt.NDArray[np.float32]:
    return np.asarray(image, dtype=np.float32)


def square(radius_px: int) -> npt.NDArray[np.uint8]:
    return np.ones((2 * radius_px + 1, 2 * radius_px + 1), np.uint8)


def drop_small(mask: BoolMask, min_area_px: int) -> tuple[BoolMask, int]:
    """The mask without components smaller than ``min_area_px``, and how many remain."""
    if not mask.any():
        return np.zeros_like(mask, dtype=np.bool_), 0
    # Labels alone, areas by counting: OpenCV's ...WithStats costs several times more.
    count, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    areas = np.bincount(labels.ravel(), minlength=count)
    keep = areas >= min_area_px
    keep[0] = False
    kept = int(keep.sum())
    if kept == count - 1:
        return np.array(mask, dtype=np.bool_), kept
    return np.asarray(keep[labels], dtype=np.bool_), kept


def fill_holes(mask: BoolMask, max_hole_px: int) -> BoolMask:
    """The mask with its holes filled: background pieces of at most ``max_hole_px`` that it
    encloses (a piece touching the image's border is outside, not a hole)."""
    background = ~mask
    # 4-connected background against 8-connected objects (the usual digital-topology pairing).
    count, labels = cv2.connectedComponents(background.view(np.uint8), connectivity=4)
    areas = np.bincount(labels.ravel(), minlength=count)
    hole = areas <= max_hole_px
    hole[0] = False  # label 0 is the mask itself
    border = np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1]))
    hole[border] = False
    if not hole.any():
        return np.array(mask, dtype=np.bool_)
    return np.asarray(mask | hole[labels], dtype=np.bool_)


def working_image(rgb: UInt8Image, mpp_um: float) -> tuple[UInt8Image, float]:
    """The level area-averaged towards :data:`WORK_MPP`, and its spacing in µm/px."""
    height, width = rgb.shape[:2]
    shrink = min(WORK_MPP / mpp_um, max(height, width) / WORK_MIN_LONG_SIDE_PX)
    if shrink < 1.05:
        return rgb, mpp_um
    size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
    return small, mpp_um * width / size[0]


def rgb_to_hed(pixels: UInt8Image) -> npt.NDArray[np.float32]:
    """Haematoxylin, eosin and DAB densities of RGB pixels (n, 3), as skimage's ``rgb2hed``."""
    # log(max(I / 255, 1e-6)) / log(1e-6) takes 256 values: tabulated, then the matrix.
    scaled = np.log(np.maximum(np.arange(256, dtype=np.float64) / 255, 1e-6)) / math.log(1e-6)
    table = np.repeat(scaled.astype(np.float32)[:, None], 3, axis=1).reshape(256, 1, 3)
    absorbance = as_f32(cv2.LUT(np.ascontiguousarray(pixels).reshape(-1, 1, 3), table))
    stains = absorbance.reshape(-1, 3) @ HED_FROM_RGB
    return as_f32(np.maximum(stains, np.float32(0.0)))


def analyse(rgb: UInt8Image, mpp_um: float) -> Analysis:
    """Measure the analysis level ``rgb`` whose spacing is ``mpp_um`` µm/px."""
    analysis = segment(rgb, mpp_um)
    measure(analysis, rgb)
    return analysis


def segment(rgb: UInt8Image, mpp_um: float) -> Analysis:
    """The masks of the analysis level ``rgb`` (``mpp_um`` µm/px): tissue, ink, dark spots,
    bubbles, lines and glass. Focus needs only the tissue mask, so it can start here while
    :func:`measure` takes the rest."""
    rgb, mpp_um = working_image(rgb, mpp_um)
    smooth = as_u8(cv2.medianBlur(rgb, 3))
    hsv = as_u8(cv2.cvtColor(smooth, cv2.COLOR_RGB2HSV))
    sat = hsv[:, :, 1]
    gray = as_u8(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY))
    saturation = (sat / np.float32(255)).astype(np.float32)
    luminance = (gray / np.float32(255)).astype(np.float32)

    # The glass: bright, unsaturated pixels; the 75th percentile of them resists dark debris.
    unsaturated = saturation < SATURATION_TISSUE_MIN
    if unsaturated.mean() > 0.01:
        glass = grey_percentile(gray, unsaturated, 75)
    else:
        glass = grey_percentile(gray, None, 99)
    glass = max(glass, 1 / 255)

    lines = _dark_lines(gray, saturation, glass, mpp_um)
    bubble, rims = _bubbles(gray, glass, mpp_um)
    edges = _coverslip_edges(lines & ~rims, mpp_um)

    # Bubble rims and edges over tissue are as dark as ink: they are lines, not spots.
    edge_mask = np.zeros(gray.shape, np.uint8)
    for edge in edges:
        cv2.line(
            edge_mask,
            (edge.x0, edge.y0),
            (edge.x1, edge.y1),
            1,
            px_of_um(LINE_WIDTH_MAX_UM, mpp_um),
        )
    dark = (luminance < DARK_LUMINANCE_RATIO * glass) & ~rims & (edge_mask == 0)
    dark, _ = drop_small(cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, disk(1)) > 0, 2)
    pen: dict[str, BoolMask] = {}
    for colour, windows in PEN_WINDOWS.items():
        inside = np.zeros(gray.shape, np.uint8)
        for h0, h1, s0, s1, v0, v1 in windows:
            inside |= as_u8(cv2.inRange(hsv, (h0, s0, v0), (h1, s1, v1)))
        mask = cv2.morphologyEx(inside, cv2.MORPH_CLOSE, disk(1)) > 0
        pen[colour], _ = drop_small(mask, px_of_mm2(MIN_PEN_AREA_MM2, mpp_um))
    coloured = pen["blue"] | pen["green"] | pen["red"]
    # Coloured ink over tissue is dark too: what is dark and not coloured ink is black ink
    # (large) or a dark spot (small).
    dark &= ~cv2.dilate(coloured.astype(np.uint8), disk(2)).astype(bool)
    pen["black"], _ = drop_small(dark, px_of_mm2(MIN_BLACK_INK_AREA_MM2, mpp_um))
    dark_spot = dark & ~pen["black"]
    pen = {colour: pen[colour] for colour in PEN_COLOURS}
    pen_any = np.zeros_like(dark)
    for mask in pen.values():
        pen_any |= mask

    candidate = (saturation >= SATURATION_TISSUE_MIN) | (luminance < DARKNESS_TISSUE_RATIO * glass)
    candidate &= ~pen_any & ~dark_spot & ~lines
    closed = cv2.morphologyEx(
        candidate.astype(np.uint8), cv2.MORPH_CLOSE, disk(px_of_um(16, mpp_um))
    )
    opened = cv2.morphologyEx(closed, cv2.MORPH_OPEN, disk(px_of_um(8, mpp_um))) > 0
    min_fragment_px = px_of_mm2(MIN_FRAGMENT_AREA_MM2, mpp_um)
    tissue = fill_holes(opened, min_fragment_px) & ~pen_any & ~dark_spot
    tissue, fragments = drop_small(tissue, min_fragment_px)

    background = ~tissue & ~pen_any & ~dark & ~lines & ~bubble & unsaturated
    background &= cv2.erode((~tissue).astype(np.uint8), square(px_of_um(40, mpp_um))).astype(bool)

    fold = np.zeros_like(tissue)
    analysis = Analysis(
        image=rgb,
        smooth=smooth,
        grey=gray,
        mpp_um=mpp_um,
        tissue=tissue,
        pen=pen,
        fold=fold,
        dark_spot=dark_spot,
        bubble=bubble,
        lines=lines,
        background=background,
        coverslip_edges=edges,
        glass_luminance=glass,
    )
    analysis.values["tissue_fragments"] = float(fragments)
    return analysis


def measure(analysis: Analysis, level_rgb: UInt8Image) -> None:
    """Every measure of the analysis (into :attr:`Analysis.values`), the fold mask and the
    stain vectors; ``level_rgb`` is the analysis level :func:`segment` was given."""
    tissue, pen, dark_spot = analysis.tissue, analysis.pen, analysis.dark_spot
    bubble, edges, background = analysis.bubble, analysis.coverslip_edges, analysis.background
    smooth, grey = analysis.smooth, analysis.grey
    glass, mpp_um = analysis.glass_luminance, analysis.mpp_um
    pen_any = analysis.pen_any
    total_px = tissue.size
    tissue_px = int(tissue.sum())
    px_mm2 = mpp_um * mpp_um / 1e6
    values = analysis.values
    values["tissue_fraction"] = tissue_px / total_px
    values["tissue_area_mm2"] = tissue_px * px_mm2
    values["pen_fraction"] = float(pen_any.mean())
    for colour in PEN_COLOURS:
        values[f"pen_{colour}_fraction"] = float(pen[colour].mean())
    # A square element: OpenCV erodes and dilates with rectangles in time independent of size.
    tissue_region = fill_holes(
        cv2.morphologyEx(tissue.astype(np.uint8), cv2.MORPH_CLOSE, square(px_of_um(200, mpp_um)))
        > 0,
        tissue.size,
    )
    inked_tissue = int((pen_any & tissue_region).sum())
    values["pen_on_tissue_fraction"] = inked_tissue / max(1, tissue_px + inked_tissue)
    values["dark_spot_fraction"] = float(dark_spot.mean())
    values["bubble_fraction"] = float(bubble.mean())
    values["coverslip_edge_count"] = float(len(edges))
    if background.sum() >= 100:
        values["background_brightness"] = float(cv2.mean(grey, background.view(np.uint8))[0]) / 255
        values["background_unevenness"] = _unevenness(grey, background)
    else:
        analysis.notes.append("too little bare glass to judge background and illumination")
    if tissue_px < 100:
        analysis.notes.append("no tissue: colour, fold, stain and focus measures not taken")
        return

    glass_rgb = _glass_rgb(smooth, background)
    od = _optical_density(smooth, glass, rgb_glass=glass_rgb)
    # The sum of the three channels' densities (cv2.transform: NumPy's sum over the last axis
    # of an image is twenty times slower).
    od_sum = cv2.transform(od, np.ones((1, 3), np.float32))
    density = cv2.GaussianBlur(od_sum, (0, 0), FOLD_SMOOTHING_UM / mpp_um)
    median_density = float(np.median(density[tissue]))
    fold = tissue & (density >= FOLD_DENSITY_RATIO * median_density)
    fold = cv2.morphologyEx(fold.astype(np.uint8), cv2.MORPH_OPEN, disk(px_of_um(4, mpp_um))) > 0
    analysis.fold, _ = drop_small(fold, px_of_mm2(MIN_FOLD_AREA_MM2, mpp_um))
    values["fold_fraction"] = float(analysis.fold.sum()) / tissue_px
    # Nuclei inside a fold are as dark as debris: specks there belong to the fold.
    near_fold = cv2.dilate(analysis.fold.astype(np.uint8), disk(px_of_um(20, mpp_um))) > 0
    analysis.dark_spot = analysis.dark_spot & ~near_fold
    values["dark_spot_fraction"] = float(analysis.dark_spot.mean())

    # Colour and stain are measured on the level's own pixels, sampled over the tissue mask:
    # averaging them to the working spacing would blend nuclei into stroma (less contrast, a
    # haematoxylin vector pulled towards eosin).
    raw, smooth_raw, suited = _tissue_sample(level_rgb, smooth, tissue, analysis.fold)
    raw_px = raw.reshape(-1, 1, 3)
    raw_gray = as_u8(cv2.cvtColor(raw_px, cv2.COLOR_RGB2GRAY)).astype(np.float32) / 255
    raw_hsv_s = as_u8(cv2.cvtColor(raw_px, cv2.COLOR_RGB2HSV))[:, :, 1].astype(np.float32) / 255
    values["tissue_brightness"] = float(raw_gray.mean())
    values["tissue_contrast"] = float(raw_gray.std())
    values["tissue_saturation"] = float(raw_hsv_s.mean())
    values["tissue_clipped_fraction"] = float(np.mean(_channel_max(raw) == 255))

    tissue_od = _optical_density(smooth_raw.reshape(-1, 1, 3), glass, glass_rgb).reshape(-1, 3)
    vectors = macenko_vectors(np.compress(suited, tissue_od, axis=0))
    if vectors is None:
        analysis.notes.append("too little stained tissue to estimate stain vectors")
    else:
        analysis.stain_vectors = vectors
        values["hematoxylin_angle_deg"] = angle_deg(vectors[0], RUIFROK_HEMATOXYLIN)
        values["eosin_angle_deg"] = angle_deg(vectors[1], RUIFROK_EOSIN)
    hed = rgb_to_hed(raw)
    values["hematoxylin_density"] = float(hed[:, 0].mean())
    values["eosin_density"] = float(hed[:, 1].mean())


def _tissue_sample(
    level_rgb: UInt8Image, smooth: UInt8Image, tissue: BoolMask, fold: BoolMask
) -> tuple[UInt8Image, UInt8Image, BoolMask]:
    """About :data:`STAIN_MAX_PIXELS` tissue pixels of the level, on a regular grid (about every
    ``step``-th row and column): raw RGB, median-smoothed RGB (n, 3), and which of them suit
    the stain estimate (outside folds and a working pixel in from the tissue's edge, where ink
    or glass may share the pixel)."""
    height, width = level_rgb.shape[:2]
    core = np.asarray(cv2.erode(tissue.view(np.uint8), np.ones((3, 3), np.uint8)), np.uint8)
    unsuited = fold | ~core.view(np.bool_)
    if tissue.shape == (height, width):
        level_smooth = smooth
    else:
        level_smooth = as_u8(cv2.medianBlur(level_rgb, 3))
    # The level's tissue pixels, estimated from the working mask's share, thinned to the cap.
    expected = float(tissue.mean()) * height * width
    step = max(1, math.ceil(math.sqrt(expected / STAIN_MAX_PIXELS)))
    grid = (math.ceil(width / step), math.ceil(height / step))

    def on_grid(mask: BoolMask) -> BoolMask:
        # Nearest neighbour: grid point (i, j) is level pixel (step*i, step*j), which lies in
        # working pixel floor(step*i * working/level) (OpenCV's nearest mapping).
        grown = cv2.resize(mask.view(np.uint8), grid, interpolation=cv2.INTER_NEAREST)
        return np.asarray(grown, np.uint8).view(np.bool_)

    def pixels(image: UInt8Image) -> UInt8Image:
        # The grid's pixels by OpenCV's nearest resize, the same mapping as the masks'
        # (a strided NumPy view of 3-byte pixels copies several times slower).
        if step == 1:
            return image.reshape(-1, 3)
        return as_u8(cv2.resize(image, grid, interpolation=cv2.INTER_NEAREST)).reshape(-1, 3)

    picked = np.flatnonzero(on_grid(tissue))
    # np.take along an axis copies rows several times faster than fancy indexing does.
    return (
        np.take(pixels(level_rgb), picked, axis=0),
        np.take(pixels(level_smooth), picked, axis=0),
        ~np.take(on_grid(unsuited).ravel(), picked),
    )


def _dark_lines(
    gray: UInt8Image, saturation: npt.NDArray[np.float32], glass: float, mpp_um: float
) -> BoolMask:
    radius = px_of_um(LINE_WIDTH_MAX_UM / 2, mpp_um) + 1
    # Closing with a square wider than the line fills a dark line of any direction.
    blackhat = as_f32(cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, square(radius))) / 255
    lines = (blackhat >= LINE_BLACKHAT_MIN * glass) & (saturation <= LINE_SATURATION_MAX)
    lines = cv2.morphologyEx(lines.astype(np.uint8), cv2.MORPH_CLOSE, disk(1)) > 0
    kept, _ = drop_small(lines, px_of_um(300, mpp_um) * 2)
    return kept


def _bubbles(gray: UInt8Image, glass: float, mpp_um: float) -> tuple[BoolMask, BoolMask]:
    """Regions inside round dark rims (air bubbles), and the rims themselves.

    Candidates come from the circle Hough transform; a candidate is kept only if along most of
    its circumference the rim is darker than both just inside and just outside it.
    """
    height, width = gray.shape
    # Candidates are sought at HOUGH_MPP at finest: the transform's time grows with the radius
    # range in pixels; the rim is then checked at the working spacing.
    shrink = max(1.0, HOUGH_MPP / mpp_um)
    coarse = gray
    if shrink > 1.05:
        size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
        coarse = as_u8(cv2.resize(gray, size, interpolation=cv2.INTER_AREA))
    coarse_mpp = mpp_um * width / coarse.shape[1]
    min_radius = px_of_um(MIN_BUBBLE_RADIUS_UM, coarse_mpp)
    circles = cv2.HoughCircles(
        cv2.GaussianBlur(coarse, (0, 0), 1.5),
        cv2.HOUGH_GRADIENT_ALT,
        # Accumulator at half the resolution: a third less time; the rim check below is what
        # decides, on the full-resolution grey image.
        dp=2.0,
        minDist=2 * min_radius,
        param1=150,
        param2=0.85,
        minRadius=min_radius,
        maxRadius=max(
            min_radius + 1,
            min(min(coarse.shape) // 2, px_of_um(MAX_BUBBLE_RADIUS_UM, coarse_mpp)),
        ),
    )
    bubble = np.zeros((height, width), np.uint8)
    rims = np.zeros((height, width), np.uint8)
    if circles is None:
        return bubble > 0, rims > 0
    circles = circles * np.float32(width / coarse.shape[1])
    angles = np.linspace(0, 2 * math.pi, 180, endpoint=False)
    cos, sin = np.cos(angles), np.sin(angles)
    depth_min = LINE_BLACKHAT_MIN * glass * 255
    for cx, cy, radius in circles[0]:
        band = max(2.0, 0.08 * radius)

        def ring(r: float, cx: float = cx, cy: float = cy) -> npt.NDArray[np.float32]:
            xs = np.clip(np.round(cx + r * cos), 0, width - 1).astype(int)
            ys = np.clip(np.round(cy + r * sin), 0, height - 1).astype(int)
            return as_f32(gray[ys, xs])

        rim = np.min([ring(radius + d) for d in np.linspace(-band, band, 5)], axis=0)
        inside, outside = ring(radius - 3 * band), ring(radius + 3 * band)
        darker = (rim < inside - depth_min) & (rim < outside - depth_min)
        if darker.mean() >= BUBBLE_RIM_COVERAGE_MIN:
            centre, r = (round(cx), round(cy)), round(radius)
            cv2.circle(bubble, centre, r + round(band), 1, thickness=-1)
            cv2.circle(rims, centre, r, 1, thickness=2 * round(band) + 1)
    return bubble > 0, rims > 0


def _coverslip_edges(lines: BoolMask, mpp_um: float) -> list[CoverslipEdge]:
    height, width = lines.shape
    min_length = COVERSLIP_EDGE_MIN_LENGTH * min(height, width)
    found = cv2.HoughLinesP(
        lines.astype(np.uint8) * 255,
        rho=1,
        theta=math.pi / 180,
        threshold=max(20, int(min_length / 2)),
        minLineLength=min_length,
        maxLineGap=px_of_um(60, mpp_um),
    )
    if found is None:
        return []
    edges: list[CoverslipEdge] = []
    kept: list[tuple[float, float]] = []
    tolerance_px = px_of_um(LINE_WIDTH_MAX_UM * 2, mpp_um)
    for x0, y0, x1, y1 in (tuple(int(v) for v in line) for line in found.reshape(-1, 4)):
        theta = math.atan2(y1 - y0, x1 - x0) % math.pi
        # Distance of the line from the origin: segments of one edge share angle and distance.
        rho = abs(x0 * math.sin(theta) - y0 * math.cos(theta))
        duplicate = any(
            min(abs(theta - t), math.pi - abs(theta - t)) < math.radians(5)
            and abs(rho - r) < tolerance_px
            for t, r in kept
        )
        if not duplicate:
            kept.append((theta, rho))
            edges.append(CoverslipEdge(x0, y0, x1, y1))
    return edges


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


def grey_percentile(grey: UInt8Image, mask: BoolMask | None, percent: float) -> float:
    """``np.percentile(grey[mask] / 255, percent)`` (linear interpolation) from the 256-bin
    histogram: a grey level takes 256 values, so counting beats sorting the pixels."""
    counts = cv2.calcHist(
        [np.ascontiguousarray(grey)],
        [0],
        None if mask is None else np.ascontiguousarray(mask).view(np.uint8),
        [256],
        [0, 256],
    ).ravel()
    cumulative = np.cumsum(counts.astype(np.int64))
    total = int(cumulative[-1])
    if total == 0:
        raise ValueError("percentile of no pixels")
    position = percent / 100 * (total - 1)
    below = math.floor(position)
    # The k-th smallest value (0-based) is the first level whose cumulative count exceeds k.
    low = int(np.searchsorted(cumulative, below, side="right"))
    high = int(np.searchsorted(cumulative, min(below + 1, total - 1), side="right"))
    return (low + (position - below) * (high - low)) / 255


def _glass_rgb(rgb: UInt8Image, background: BoolMask) -> npt.NDArray[np.float32] | None:
    where = np.flatnonzero(background)
    if len(where) < 100:
        return None
    # A regular sample of the glass is enough for its median colour.
    sample = rgb.reshape(-1, 3)[where[:: max(1, len(where) // GLASS_SAMPLE_PIXELS)]]
    return as_f32(np.median(sample, axis=0))


def _optical_density(
    rgb: UInt8Image, glass: float, rgb_glass: npt.NDArray[np.float32] | None
) -> npt.NDArray[np.float32]:
    """Beer-Lambert optical density per channel against the slide's own glass (I0)."""
    incident = rgb_glass if rgb_glass is not None else np.full(3, glass * 255, np.float32)
    incident = np.maximum(incident, 1.0)
    # Each channel takes 256 values: tabulate -log10((I + 1) / (I0 + 1)) once per channel.
    levels = np.arange(256, dtype=np.float32)[:, None]
    ratio = (levels + 1) / (incident[None, :] + 1)
    table = np.maximum(-np.log10(np.minimum(ratio, 1.0)), 0.0).astype(np.float32)
    return as_f32(cv2.LUT(rgb, table.reshape(256, 1, 3)))


def macenko_vectors(
    od: npt.NDArray[np.float32],
) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
    """Haematoxylin and eosin unit OD vectors (Macenko et al. 2009), or None if too little."""
    stained = np.compress(_channel_min(od) > STAIN_OD_MIN, od, axis=0)
    if len(stained) < 100:
        return None
    _, eigenvectors = np.linalg.eigh(np.cov(stained.T))
    plane = eigenvectors[:, 1:3]
    projected = stained @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angles, (STAIN_PERCENTILE, 100 - STAIN_PERCENTILE))
    first = plane @ np.array([math.cos(low), math.sin(low)])
    second = plane @ np.array([math.cos(high), math.sin(high)])
    first, second = (_unit_positive(first), _unit_positive(second))
    # Haematoxylin absorbs red more than eosin does (Ruifrok's vectors: 0.65 vs 0.07).
    hematoxylin, eosin = (first, second) if first[0] > second[0] else (second, first)
    return hematoxylin, eosin


# NumPy reduces a short last axis (RGB) and selects rows by a boolean mask several times slower
# than it combines three column views or compresses: the helpers below and np.compress do that.
def _channel_min(pixels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per-pixel minimum over the channels of (n, 3) pixels."""
    return np.minimum(np.minimum(pixels[:, 0], pixels[:, 1]), pixels[:, 2])


def _channel_max(pixels: UInt8Image) -> UInt8Image:
    """Per-pixel maximum over the channels of (n, 3) pixels."""
    return np.maximum(np.maximum(pixels[:, 0], pixels[:, 1]), pixels[:, 2])


def _unit_positive(vector: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    if vector.sum() < 0:
        vector = -vector
    norm = float(np.linalg.norm(vector)) or 1.0
    unit = vector / norm
    return float(unit[0]), float(unit[1]), float(unit[2])


def angle_deg(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    cosine = float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))

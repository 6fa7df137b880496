"""The masks of the analysis level: glass, tissue, marker ink, dark spots, bubbles, lines.

* tissue: saturation or darkness against the glass (HistoQC's LightDark and saturation
  modules), with the glass level measured on the slide itself so exposure shifts do not move
  it;
* pen: hue/saturation windows per ink colour (HistoQC PenMarkingModule; the deep-histopath
  RGB ink filters), kept only as connected strokes of a minimum area;
* dark spots: small very dark specks (debris, dust); large ones are black ink;
* air bubbles and coverslip edges: :mod:`~slidestream_wsi.qc.artefacts`.

The level is first area-averaged to :data:`WORK_MPP` (about 16 µm/px, HistoQC's 0.625x) while
its long side stays at least :data:`WORK_MIN_LONG_SIDE_PX`: every measure here is of structures
of 40 µm and more, and the morphology and Hough transforms cost in proportion to the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc.artefacts import (
    LINE_WIDTH_MAX_UM,
    CoverslipEdge,
    bubbles,
    coverslip_edges,
    dark_lines,
)
from slidestream_wsi.qc.masks import (
    BoolMask,
    UInt8Image,
    as_u8,
    disk,
    drop_small,
    fill_holes,
    grey_percentile,
    px_of_mm2,
    px_of_um,
    square,
)

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
class Segmentation:
    """The masks of the working image, all the size of :attr:`image`."""

    image: UInt8Image
    """The analysis level as measured: area-averaged to the working spacing :attr:`mpp_um`."""
    smooth: UInt8Image
    """:attr:`image` median-filtered (3x3): JPEG noise and single-pixel specks removed."""
    grey: UInt8Image
    """BT.601 luma of :attr:`smooth`, 0-255."""
    mpp_um: float
    glass_luminance: float
    tissue: BoolMask
    tissue_fragments: int
    pen: dict[str, BoolMask]
    """Per colour of :data:`PEN_COLOURS`, in that order."""
    dark_spot: BoolMask
    bubble: BoolMask
    lines: BoolMask
    background: BoolMask
    """Bare glass, away from tissue, ink and artefacts."""
    coverslip_edges: list[CoverslipEdge]

    @property
    def pen_any(self) -> BoolMask:
        out = np.zeros_like(self.tissue)
        for mask in self.pen.values():
            out |= mask
        return out


@dataclass(frozen=True, slots=True)
class _Channels:
    saturation: npt.NDArray[np.float32]
    luminance: npt.NDArray[np.float32]
    unsaturated: BoolMask
    glass: float


def working_image(rgb: UInt8Image, mpp_um: float) -> tuple[UInt8Image, float]:
    """The level area-averaged towards :data:`WORK_MPP`, and its spacing in µm/px."""
    height, width = rgb.shape[:2]
    shrink = min(WORK_MPP / mpp_um, max(height, width) / WORK_MIN_LONG_SIDE_PX)
    if shrink < 1.05:
        return rgb, mpp_um
    size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
    return small, mpp_um * width / size[0]


def segment(rgb: UInt8Image, mpp_um: float) -> Segmentation:
    """The masks of the analysis level ``rgb`` (``mpp_um`` µm/px). Focus needs only the tissue
    mask, so it can start here while :func:`~slidestream_wsi.qc.measure.measure` takes the
    rest."""
    rgb, mpp_um = working_image(rgb, mpp_um)
    smooth = as_u8(cv2.medianBlur(rgb, 3))
    hsv = as_u8(cv2.cvtColor(smooth, cv2.COLOR_RGB2HSV))
    gray = as_u8(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY))
    channels = _channels(hsv, gray)
    glass = channels.glass
    lines = dark_lines(gray, channels.saturation, glass, mpp_um)
    bubble, rims = bubbles(gray, glass, mpp_um)
    edges = coverslip_edges(lines & ~rims, mpp_um)
    dark = _dark(channels, rims, edges, mpp_um)
    pen, dark = _pen(hsv, dark, mpp_um)
    dark_spot = dark & ~pen["black"]
    pen_any = np.zeros_like(dark)
    for mask in pen.values():
        pen_any |= mask
    tissue, fragments = _tissue(channels, pen_any | dark_spot | lines, pen_any | dark_spot, mpp_um)
    background = ~tissue & ~pen_any & ~dark & ~lines & ~bubble & channels.unsaturated
    background &= cv2.erode((~tissue).astype(np.uint8), square(px_of_um(40, mpp_um))).astype(bool)
    return Segmentation(
        image=rgb,
        smooth=smooth,
        grey=gray,
        mpp_um=mpp_um,
        glass_luminance=glass,
        tissue=tissue,
        tissue_fragments=fragments,
        pen=pen,
        dark_spot=dark_spot,
        bubble=bubble,
        lines=lines,
        background=background,
        coverslip_edges=edges,
    )


def _channels(hsv: UInt8Image, gray: UInt8Image) -> _Channels:
    """Saturation and luminance (0-1), and the glass level: the 75th percentile of bright,
    unsaturated pixels resists dark debris."""
    saturation = (hsv[:, :, 1] / np.float32(255)).astype(np.float32)
    luminance = (gray / np.float32(255)).astype(np.float32)
    unsaturated = saturation < SATURATION_TISSUE_MIN
    if unsaturated.mean() > 0.01:
        glass = grey_percentile(gray, unsaturated, 75)
    else:
        glass = grey_percentile(gray, None, 99)
    return _Channels(saturation, luminance, unsaturated, max(glass, 1 / 255))


def _dark(
    channels: _Channels, rims: BoolMask, edges: list[CoverslipEdge], mpp_um: float
) -> BoolMask:
    """Ink-black pixels, bar bubble rims and edges: over tissue those are as dark as ink, and
    they are lines, not spots."""
    edge_mask = np.zeros(rims.shape, np.uint8)
    for edge in edges:
        cv2.line(
            edge_mask,
            (edge.x0, edge.y0),
            (edge.x1, edge.y1),
            1,
            px_of_um(LINE_WIDTH_MAX_UM, mpp_um),
        )
    dark = (channels.luminance < DARK_LUMINANCE_RATIO * channels.glass) & ~rims & (edge_mask == 0)
    opened = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, disk(1)) > 0
    kept, _ = drop_small(opened, 2)
    return kept


def _pen(hsv: UInt8Image, dark: BoolMask, mpp_um: float) -> tuple[dict[str, BoolMask], BoolMask]:
    """Ink strokes per colour of :data:`PEN_COLOURS`, and the dark pixels that are no coloured
    ink: coloured ink over tissue is dark too, so what is dark and not coloured ink is black
    ink (large) or a dark spot (small)."""
    pen: dict[str, BoolMask] = {}
    for colour, windows in PEN_WINDOWS.items():
        inside = np.zeros(hsv.shape[:2], np.uint8)
        for h0, h1, s0, s1, v0, v1 in windows:
            inside |= as_u8(cv2.inRange(hsv, (h0, s0, v0), (h1, s1, v1)))
        mask = cv2.morphologyEx(inside, cv2.MORPH_CLOSE, disk(1)) > 0
        pen[colour], _ = drop_small(mask, px_of_mm2(MIN_PEN_AREA_MM2, mpp_um))
    coloured = pen["blue"] | pen["green"] | pen["red"]
    dark = dark & ~cv2.dilate(coloured.astype(np.uint8), disk(2)).astype(bool)
    pen["black"], _ = drop_small(dark, px_of_mm2(MIN_BLACK_INK_AREA_MM2, mpp_um))
    return {colour: pen[colour] for colour in PEN_COLOURS}, dark


def _tissue(
    channels: _Channels, not_tissue: BoolMask, cut_out: BoolMask, mpp_um: float
) -> tuple[BoolMask, int]:
    """Stained or dark pixels that are no ink, spot or line (``not_tissue``), closed and opened
    into pieces, holes filled, ink and spots (``cut_out``) cut out again, and small pieces
    dropped; and how many pieces remain."""
    candidate = (channels.saturation >= SATURATION_TISSUE_MIN) | (
        channels.luminance < DARKNESS_TISSUE_RATIO * channels.glass
    )
    candidate &= ~not_tissue
    closed = cv2.morphologyEx(
        candidate.astype(np.uint8), cv2.MORPH_CLOSE, disk(px_of_um(16, mpp_um))
    )
    opened = cv2.morphologyEx(closed, cv2.MORPH_OPEN, disk(px_of_um(8, mpp_um))) > 0
    min_fragment_px = px_of_mm2(MIN_FRAGMENT_AREA_MM2, mpp_um)
    tissue = fill_holes(opened, min_fragment_px) & ~cut_out
    return drop_small(tissue, min_fragment_px)

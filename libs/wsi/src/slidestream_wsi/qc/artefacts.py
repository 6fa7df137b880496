"""Thin dark lines on the working image and what they outline: air bubbles (closed round rims,
circle Hough transform) and coverslip or mounting edges (long straight lines, Hough), found by
a morphological black-hat on the grey image."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    px_of_um,
    square,
)

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


@dataclass(frozen=True, slots=True)
class CoverslipEdge:
    x0: int
    y0: int
    x1: int
    y1: int


def dark_lines(
    gray: UInt8Image, saturation: npt.NDArray[np.float32], glass: float, mpp_um: float
) -> BoolMask:
    radius = px_of_um(LINE_WIDTH_MAX_UM / 2, mpp_um) + 1
    # Closing with a square wider than the line fills a dark line of any direction.
    blackhat = as_f32(cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, square(radius))) / 255
    lines = (blackhat >= LINE_BLACKHAT_MIN * glass) & (saturation <= LINE_SATURATION_MAX)
    lines = cv2.morphologyEx(lines.astype(np.uint8), cv2.MORPH_CLOSE, disk(1)) > 0
    kept, _ = drop_small(lines, px_of_um(300, mpp_um) * 2)
    return kept


def bubbles(gray: UInt8Image, glass: float, mpp_um: float) -> tuple[BoolMask, BoolMask]:
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


def coverslip_edges(lines: BoolMask, mpp_um: float) -> list[CoverslipEdge]:
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

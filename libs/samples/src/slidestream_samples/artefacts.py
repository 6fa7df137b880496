"""QC artefacts planted into a painted slide, each recording its truth mask at level 0."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from slidestream_samples.painting import GLASS_RGB, SyntheticSlide

INK_RGB = {
    "blue": (40, 70, 190),
    "green": (40, 150, 70),
    "black": (25, 25, 30),
    "red": (200, 25, 30),
}


def plant_blur(slide: SyntheticSlide, fraction: float, sigma_um: float = 8.0) -> None:
    """Defocus the left part of the tissue so that ``fraction`` of the tissue is blurred."""
    columns = slide.tissue.sum(axis=0).cumsum()
    cut = int(np.searchsorted(columns, fraction * columns[-1]))
    region = np.zeros_like(slide.tissue)
    region[:, :cut] = True
    blurred = cv2.GaussianBlur(slide.rgb, (0, 0), sigma_um / slide.mpp_um)
    slide.rgb[region] = blurred[region]
    slide.truth["blur"] = region & slide.tissue


def plant_pen(slide: SyntheticSlide, colour: str, seed: int = 1, width_um: float = 300) -> None:
    """A marker stroke (a wavy line across the slide), translucent like real ink."""
    rng = np.random.default_rng(seed)
    height, width = slide.tissue.shape
    xs = np.linspace(0.1 * width, 0.9 * width, 12)
    base = rng.uniform(0.2, 0.8) * height
    ys = base + 0.08 * height * np.sin(np.linspace(0, 2 * math.pi, 12) + rng.uniform(0, 3))
    points = np.stack([xs, ys], axis=1).astype(np.int32)
    stroke = np.zeros((height, width), np.uint8)
    cv2.polylines(stroke, [points], False, 1, thickness=max(1, round(width_um / slide.mpp_um)))
    mask = stroke > 0
    # Ink over glass or tissue: the ink's transmittance multiplies what is beneath.
    ink = np.asarray(INK_RGB[colour], np.float32) / np.asarray(GLASS_RGB, np.float32)
    under = slide.rgb[mask].astype(np.float32)
    slide.rgb[mask] = np.clip(under * ink * 0.9 + 0.1 * np.asarray(INK_RGB[colour]), 0, 255)
    slide.truth[f"pen_{colour}"] = mask
    slide.tissue &= ~mask


def plant_fold(slide: SyntheticSlide) -> None:
    """A band where the section lies on itself: twice the optical density."""
    height, width = slide.tissue.shape
    band = np.zeros((height, width), np.uint8)
    points = np.array([[0.3 * width, 0.2 * height], [0.7 * width, 0.75 * height]], dtype=np.int32)
    cv2.line(band, tuple(points[0]), tuple(points[1]), 1, thickness=round(0.06 * width))
    mask = (band > 0) & slide.tissue
    glass = np.asarray(GLASS_RGB, np.float32)
    transmittance = slide.rgb[mask].astype(np.float32) / glass
    slide.rgb[mask] = np.clip(glass * transmittance * transmittance, 0, 255).astype(np.uint8)
    slide.truth["fold"] = mask


def plant_bubble(slide: SyntheticSlide, radius_um: float = 450.0, rim_um: float = 40.0) -> None:
    """An air bubble: a round grey refractive rim, its inside a little brighter."""
    height, width = slide.tissue.shape
    centre = (int(0.78 * width), int(0.3 * height))
    radius = round(radius_um / slide.mpp_um)
    disc = np.zeros((height, width), np.uint8)
    cv2.circle(disc, centre, radius, 1, thickness=-1)
    rim = np.zeros((height, width), np.uint8)
    cv2.circle(
        rim, centre, radius - round(rim_um / slide.mpp_um / 2), 1, round(rim_um / slide.mpp_um)
    )
    inside = (disc > 0) & (rim == 0)
    slide.rgb[inside] = np.clip(slide.rgb[inside].astype(np.float32) * 1.03, 0, 255)
    slide.rgb[rim > 0] = (slide.rgb[rim > 0].astype(np.float32) * 0.45).astype(np.uint8)
    slide.truth["bubble"] = disc > 0


def plant_coverslip_edge(slide: SyntheticSlide, width_um: float = 40.0) -> None:
    height, width = slide.tissue.shape
    line = np.zeros((height, width), np.uint8)
    cv2.line(
        line,
        (0, int(0.9 * height)),
        (width - 1, int(0.85 * height)),
        1,
        round(width_um / slide.mpp_um),
    )
    slide.rgb[line > 0] = (slide.rgb[line > 0].astype(np.float32) * 0.45).astype(np.uint8)
    slide.truth["coverslip_edge"] = line > 0


def plant_dark_spots(slide: SyntheticSlide, count: int = 12, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    height, width = slide.tissue.shape
    spots = np.zeros((height, width), np.uint8)
    for _ in range(count):
        centre = (int(rng.uniform(0.05, 0.95) * width), int(rng.uniform(0.05, 0.95) * height))
        cv2.circle(spots, centre, round(rng.uniform(30, 60) / slide.mpp_um), 1, -1)
    slide.rgb[spots > 0] = (20, 18, 22)
    slide.truth["dark_spot"] = spots > 0
    slide.tissue &= spots == 0


def plant_exposure(slide: SyntheticSlide, gain: float) -> None:
    """Scale every intensity (a mis-set exposure), clipping at 255 as a sensor does."""
    slide.rgb[:] = np.clip(slide.rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def plant_vignetting(slide: SyntheticSlide, depth: float = 0.3) -> None:
    """Illumination falling off towards the corners (an uneven lamp or a bad flat-field)."""
    height, width = slide.tissue.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot((xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2)) / math.sqrt(
        2
    )
    gain = 1.0 - depth * radius**2
    slide.rgb[:] = np.clip(slide.rgb.astype(np.float32) * gain[:, :, None], 0, 255).astype(np.uint8)


PLANTS: dict[str, Callable[[SyntheticSlide], None]] = {
    "clean": lambda s: None,
    "blur30": lambda s: plant_blur(s, 0.30),
    "blur60": lambda s: plant_blur(s, 0.60),
    "pen_blue": lambda s: plant_pen(s, "blue"),
    "pen_green": lambda s: plant_pen(s, "green", seed=2),
    "pen_black": lambda s: plant_pen(s, "black", seed=3),
    "pen_red": lambda s: plant_pen(s, "red", seed=4),
    "fold": plant_fold,
    "bubble": plant_bubble,
    "edge": plant_coverslip_edge,
    "dark_spots": plant_dark_spots,
    "over": lambda s: plant_exposure(s, 1.35),
    "under": lambda s: plant_exposure(s, 0.55),
    "vignetting": plant_vignetting,
}
"""The planted QC cases by name: what each does to a freshly painted slide."""

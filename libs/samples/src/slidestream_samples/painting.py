"""Generated H&E-like slides with planted, known QC truth, written as small pyramidal TIFFs.

Tissue is painted in optical density (Beer-Lambert): each pixel is haematoxylin and eosin
concentrations times Ruifrok & Johnston's stain vectors (the ones QC deconvolves with), so the
stain vectors, folds (twice the density, :mod:`slidestream_samples.artefacts`) and exposure
behave as in a scanner. Every artefact returns its truth mask at level 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_wsi.qc.analysis import RUIFROK_EOSIN, RUIFROK_HEMATOXYLIN

TILE_PX = 256
DEFAULT_WIDTH_PX = 4096
DEFAULT_HEIGHT_PX = 3072
DEFAULT_MPP = 1.0
"""Level 0 at 1 µm/px (10x): a 4 x 3 mm field, 5x at level 1."""
GLASS_RGB = (243, 241, 246)

Mask = npt.NDArray[np.bool_]
Image = npt.NDArray[np.uint8]


@dataclass
class SyntheticSlide:
    """Level-0 RGB and the truth planted in it (boolean masks at level 0)."""

    rgb: Image
    mpp_um: float
    tissue: Mask
    truth: dict[str, Mask] = field(default_factory=dict)


def paint_tissue(
    width: int = DEFAULT_WIDTH_PX,
    height: int = DEFAULT_HEIGHT_PX,
    seed: int = 0,
    tissue_share: float = 0.35,
    mpp_um: float = DEFAULT_MPP,
    empty: bool = False,
) -> SyntheticSlide:
    rng = np.random.default_rng(seed)
    cv2.setRNGSeed(seed)
    # Organic tissue outline: a smooth random field (made at 1/16 scale, then enlarged),
    # thresholded at the wanted share inside an ellipse so glass shows round the section.
    small_w, small_h = max(8, width // 16), max(8, height // 16)
    coarse = rng.random((max(2, small_h // 8), max(2, small_w // 8))).astype(np.float32)
    small = cv2.resize(coarse, (small_w, small_h), interpolation=cv2.INTER_CUBIC)
    small = cv2.GaussianBlur(small, (0, 0), 2.5)
    yy, xx = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    ellipse = ((xx - small_w / 2) / (0.42 * small_w)) ** 2 + (
        (yy - small_h / 2) / (0.4 * small_h)
    ) ** 2
    small = small - 0.5 * ellipse
    level = np.inf if empty else float(np.quantile(small, 1 - tissue_share))
    field_ = cv2.resize(small - level, (width, height), interpolation=cv2.INTER_LINEAR)
    tissue = field_ > 0

    # Stain concentrations: eosin varies smoothly (stroma vs cytoplasm), haematoxylin carries
    # nuclei (dots of ~6 µm) at about one per 200 µm².
    stroma = cv2.resize(
        rng.random((height // 64 + 1, width // 64 + 1)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    nuclei = np.zeros((height, width), np.uint8)
    count = int(width * height * mpp_um * mpp_um / 200)
    nuclei[rng.integers(0, height, count), rng.integers(0, width, count)] = 255
    radius = max(1, round(3 / mpp_um))
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    nuclei = np.asarray(cv2.dilate(nuclei, element), np.uint8)
    nuclei_f = np.asarray(cv2.GaussianBlur(nuclei, (0, 0), 0.7), np.float32) / 255
    grain = np.empty((height, width), np.float32)
    cv2.randn(grain, np.array([0.0]), np.array([0.03]))
    inside = tissue.astype(np.float32)
    eosin = inside * (0.25 + 0.25 * stroma + grain)
    hema = inside * (0.08 + 0.9 * nuclei_f + 0.5 * grain)
    rgb = compose(hema, eosin)
    noise = np.empty(rgb.shape, np.int8)
    cv2.randn(noise, np.array([0.0] * 3), np.array([1.5] * 3))
    rgb = np.asarray(cv2.add(rgb, noise, dtype=cv2.CV_8U), np.uint8)
    return SyntheticSlide(rgb, mpp_um, tissue, {"tissue": tissue.copy()})


def compose(hema: npt.NDArray[np.float32], eosin: npt.NDArray[np.float32]) -> Image:
    """RGB from stain concentrations: I = I0 · 10^-(cH·H + cE·E) per channel (Beer-Lambert)."""
    channels = []
    for channel in range(3):
        od = cv2.addWeighted(hema, RUIFROK_HEMATOXYLIN[channel], eosin, RUIFROK_EOSIN[channel], 0.0)
        transmitted = cv2.exp(np.maximum(np.asarray(od, np.float32), 0.0) * -math.log(10.0))
        channels.append(np.asarray(cv2.convertScaleAbs(transmitted, alpha=GLASS_RGB[channel])))
    return np.asarray(cv2.merge(channels), np.uint8)


def pyramid(rgb: Image, smallest_px: int = 256) -> list[Image]:
    levels = [rgb]
    while max(levels[-1].shape[:2]) // 2 >= smallest_px:
        previous = levels[-1]
        size = (max(1, previous.shape[1] // 2), max(1, previous.shape[0] // 2))
        levels.append(
            np.asarray(cv2.resize(previous, size, interpolation=cv2.INTER_AREA), np.uint8)
        )
    return levels


def write_tiff_pyramid(
    path: Path, rgb: Image, mpp_um: float, compression: str = "jpeg", quality: int = 90
) -> list[Image]:
    """Levels as top-level IFDs, 256-px tiles, spacing in the resolution tags (px per cm)."""
    levels = pyramid(rgb)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for index, level in enumerate(levels):
            spacing_um = mpp_um * rgb.shape[1] / level.shape[1]
            tif.write(
                level,
                tile=(TILE_PX, TILE_PX),
                photometric="rgb",
                compression=compression,
                compressionargs={"level": quality} if compression == "jpeg" else None,
                resolution=(1e4 / spacing_um, 1e4 / spacing_um),
                resolutionunit="CENTIMETER",
                subfiletype=1 if index else 0,
            )
    return levels

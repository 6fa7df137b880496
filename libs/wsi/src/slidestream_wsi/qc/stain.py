"""Colour and stain of tissue pixels: Beer-Lambert optical density against the slide's own
glass, stain vectors by Macenko et al. (ISBI 2009) against Ruifrok & Johnston's H&E (2001), and
haematoxylin / eosin density by colour deconvolution (the transform of scikit-image's
``rgb2hed``, same matrix, same log scaling; a test holds the two equal)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc.masks import BoolMask, UInt8Image, as_f32, as_u8

StainVector = tuple[float, float, float]

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


def rgb_to_hed(pixels: UInt8Image) -> npt.NDArray[np.float32]:
    """Haematoxylin, eosin and DAB densities of RGB pixels (n, 3), as skimage's ``rgb2hed``."""
    # log(max(I / 255, 1e-6)) / log(1e-6) takes 256 values: tabulated, then the matrix.
    scaled = np.log(np.maximum(np.arange(256, dtype=np.float64) / 255, 1e-6)) / math.log(1e-6)
    table = np.repeat(scaled.astype(np.float32)[:, None], 3, axis=1).reshape(256, 1, 3)
    absorbance = as_f32(cv2.LUT(np.ascontiguousarray(pixels).reshape(-1, 1, 3), table))
    stains = absorbance.reshape(-1, 3) @ HED_FROM_RGB
    return as_f32(np.maximum(stains, np.float32(0.0)))


def tissue_sample(
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


def optical_density(
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
) -> tuple[StainVector, StainVector] | None:
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


def channel_max(pixels: UInt8Image) -> UInt8Image:
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

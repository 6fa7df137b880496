"""Generated H&E slides with planted tissue types: the reference models' training data.

Each slide is a section on glass cut into irregular regions (a noisy Voronoi partition), each
region one tissue type painted as a procedural texture in optical density (haematoxylin and
eosin concentrations, Beer-Lambert through :func:`slidestream_samples.painting.compose`):

- ``tumour``: crowded large nuclei with coarse chromatin over pink cytoplasm;
- ``stroma``: wavy eosinophilic fibres with sparse spindle nuclei along them;
- ``fat``: empty polygonal adipocytes (~60 µm) behind thin pink membranes;
- ``necrosis``: mottled pink debris dusted with nuclear fragments, no intact nuclei;
- ``mucus``: pale blue-grey wisps with a few floating cells.

The regions map (one class index per level-0 pixel, :data:`GLASS` outside the section) is the
planted truth the tiles are labelled with. Each slide has its own stain strength, so slides
differ as batches do in a laboratory. Everything follows from the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_samples.painting import compose, write_tiff_pyramid

TISSUE_TYPES = ("tumour", "stroma", "fat", "necrosis", "mucus")
"""The planted classes, in label order (a model's output index is a position in this tuple)."""
GLASS = 255
"""Region value outside the section."""
LEVEL0_MPP_UM = 1.0
"""Level 0 at 1 µm/px (10x); level 1 (2 µm/px) is what the reference models read."""
DEFAULT_WIDTH_PX = 4096
DEFAULT_HEIGHT_PX = 3072
REGIONS_PER_SLIDE = 14
"""Voronoi cells the section is cut into; every class gets at least two of them."""
SECTION_SHARE = 0.7
"""Share of the slide the section covers."""

Concentrations = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]
"""(haematoxylin, eosin) optical-density concentrations, level 0."""
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class TissueTypeSlide:
    rgb: Image
    """Level-0 RGB."""
    regions: npt.NDArray[np.uint8]
    """Level-0 class index into :data:`TISSUE_TYPES` per pixel, :data:`GLASS` off the section."""
    mpp_um: float

    def mask(self, label: str) -> npt.NDArray[np.bool_]:
        return np.asarray(self.regions == TISSUE_TYPES.index(label))


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], cell_px: int
) -> npt.NDArray[np.float32]:
    """Values in [0, 1] varying over about ``cell_px`` pixels (bicubic upsampled noise)."""
    height, width = shape
    coarse = rng.random((height // cell_px + 2, width // cell_px + 2)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(np.clip(field, 0.0, 1.0), np.float32)


def _dots(
    rng: np.random.Generator, shape: tuple[int, int], per_um2: float, mpp_um: float
) -> npt.NDArray[np.uint8]:
    """Single-pixel seeds at a density per µm² (255 where a seed is)."""
    height, width = shape
    count = int(height * width * mpp_um * mpp_um * per_um2)
    dots = np.zeros(shape, np.uint8)
    dots[rng.integers(0, height, count), rng.integers(0, width, count)] = 255
    return dots


def _disc(radius_px: int) -> npt.NDArray[np.uint8]:
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1,) * 2))


def _nuclei(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    per_um2: float,
    radius_um: float,
    mpp_um: float,
) -> npt.NDArray[np.float32]:
    """Round nuclei (0..1) of uneven outline: dilated seeds, blurred, re-thresholded on noise."""
    seeds = _dots(rng, shape, per_um2, mpp_um)
    grown = cv2.dilate(seeds, _disc(max(1, round(radius_um / mpp_um))))
    soft = np.asarray(cv2.GaussianBlur(grown, (0, 0), 1.2), np.float32) / 255
    ragged = soft + 0.35 * (rng.random(shape, dtype=np.float32) - 0.5)
    return np.asarray(cv2.GaussianBlur((ragged > 0.45).astype(np.float32), (0, 0), 0.6))


def _tumour(rng: np.random.Generator, shape: tuple[int, int], mpp_um: float) -> Concentrations:
    nuclei = _nuclei(rng, shape, per_um2=1 / 110, radius_um=4.0, mpp_um=mpp_um)
    chromatin = 0.65 + 0.35 * rng.random(shape, dtype=np.float32)
    cytoplasm = _smooth_noise(rng, shape, round(30 / mpp_um))
    hema = 0.12 + 1.05 * nuclei * chromatin
    eosin = 0.22 + 0.12 * cytoplasm
    return hema.astype(np.float32), eosin.astype(np.float32)


def _oriented_strokes(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    count: int,
    length_px: tuple[float, float],
    thickness_px: int,
    angle: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """``count`` straight strokes (0..1) whose direction follows the ``angle`` field (radians)."""
    height, width = shape
    canvas = np.zeros(shape, np.uint8)
    xs, ys = rng.integers(0, width, count), rng.integers(0, height, count)
    lengths = rng.uniform(*length_px, count)
    angles = angle[ys, xs] + rng.normal(0.0, 0.15, count)
    dx, dy = np.cos(angles) * lengths / 2, np.sin(angles) * lengths / 2
    for x, y, ddx, ddy in zip(xs, ys, dx, dy, strict=True):
        start = (int(x - ddx), int(y - ddy))
        end = (int(x + ddx), int(y + ddy))
        cv2.line(canvas, start, end, 255, thickness_px, cv2.LINE_AA)
    return np.asarray(canvas, np.float32) / np.float32(255)


def _stroma(rng: np.random.Generator, shape: tuple[int, int], mpp_um: float) -> Concentrations:
    area_um2 = shape[0] * shape[1] * mpp_um * mpp_um
    # Fibres run in bundles: their direction drifts over ~200 µm.
    angle = (_smooth_noise(rng, shape, round(200 / mpp_um)) * 2 * np.pi).astype(np.float32)
    fibres = _oriented_strokes(
        rng,
        shape,
        count=int(area_um2 / 180),
        length_px=(40 / mpp_um, 120 / mpp_um),
        thickness_px=max(1, round(1.5 / mpp_um)),
        angle=angle,
    )
    spindles = _oriented_strokes(
        rng,
        shape,
        count=int(area_um2 / 1500),
        length_px=(9 / mpp_um, 14 / mpp_um),
        thickness_px=max(2, round(2.5 / mpp_um)),
        angle=angle,
    )
    fibres = np.minimum(np.asarray(cv2.GaussianBlur(fibres, (0, 0), 0.7)), 1.0)
    hema = 0.04 + 0.9 * spindles
    eosin = 0.2 + 0.4 * fibres
    return hema.astype(np.float32), eosin.astype(np.float32)


def _fat(rng: np.random.Generator, shape: tuple[int, int], mpp_um: float) -> Concentrations:
    # Adipocytes as the Voronoi cells of random seeds (~60 µm across); membranes where the
    # nearest seed changes between neighbouring pixels.
    seeds = _dots(rng, shape, 1 / 2800, mpp_um)
    _, labels = cv2.distanceTransformWithLabels(
        255 - seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP
    )
    edges = np.zeros(shape, np.bool_)
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    membranes = np.asarray(cv2.GaussianBlur(edges.astype(np.float32), (0, 0), 0.6), np.float32)
    membranes = np.minimum(membranes * 2.0, 1.0)
    flattened = _dots(rng, shape, 1 / 40000, mpp_um)
    flattened = np.asarray(cv2.dilate(flattened, _disc(max(1, round(2.5 / mpp_um)))), np.uint8)
    nuclei = (np.asarray(flattened, np.float32) / 255) * membranes
    hema = 0.01 + 0.05 * membranes + 0.8 * nuclei
    eosin = 0.015 + 0.42 * membranes
    return hema.astype(np.float32), eosin.astype(np.float32)


def _necrosis(rng: np.random.Generator, shape: tuple[int, int], mpp_um: float) -> Concentrations:
    fragments = _dots(rng, shape, 1 / 35, mpp_um)
    fragments_f = np.asarray(cv2.GaussianBlur(fragments, (0, 0), 0.8), np.float32) / 255
    fragments_f = np.minimum(fragments_f * 3.0, 1.0)
    mottle = _smooth_noise(rng, shape, round(12 / mpp_um))
    haze = _smooth_noise(rng, shape, round(60 / mpp_um))
    hema = 0.1 + 0.12 * haze + 0.7 * fragments_f
    eosin = 0.2 + 0.35 * mottle
    return hema.astype(np.float32), eosin.astype(np.float32)


def _mucus(rng: np.random.Generator, shape: tuple[int, int], mpp_um: float) -> Concentrations:
    # Wisps: noise smeared along one direction per slide (mucus is drawn out by the knife).
    noise = rng.random(shape, dtype=np.float32)
    length = max(3, round(40 / mpp_um)) | 1
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    angle = float(rng.uniform(0, 180))
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, rotation, (length, length)), np.float32)
    kernel /= max(float(kernel.sum()), 1e-6)
    wisps = np.asarray(cv2.filter2D(noise, -1, kernel), np.float32)
    wisps = np.clip((wisps - 0.5) * 6 + 0.5, 0.0, 1.0)
    cells = _nuclei(rng, shape, per_um2=1 / 9000, radius_um=4.0, mpp_um=mpp_um)
    hema = 0.07 + 0.1 * wisps + 0.8 * cells
    eosin = 0.03 + 0.03 * wisps
    return hema.astype(np.float32), eosin.astype(np.float32)


PAINTERS: dict[str, Callable[[np.random.Generator, tuple[int, int], float], Concentrations]] = {
    "tumour": _tumour,
    "stroma": _stroma,
    "fat": _fat,
    "necrosis": _necrosis,
    "mucus": _mucus,
}


def plant_regions(rng: np.random.Generator, shape: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Class index per pixel: a section (a smooth blob) cut into noisy Voronoi regions, each
    class at least twice; :data:`GLASS` elsewhere. Computed at 1/8 scale, then enlarged."""
    height, width = shape
    small_h, small_w = max(16, height // 8), max(16, width // 8)
    yy, xx = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    outline = _smooth_noise(rng, (small_h, small_w), max(4, small_w // 6)) - 0.6 * (
        ((xx - small_w / 2) / (0.5 * small_w)) ** 2 + ((yy - small_h / 2) / (0.5 * small_h)) ** 2
    )
    section = outline > np.quantile(outline, 1 - SECTION_SHARE)
    centres = rng.random((REGIONS_PER_SLIDE, 2)) * (small_w, small_h)
    classes = np.resize(rng.permutation(len(TISSUE_TYPES)), REGIONS_PER_SLIDE)
    # Distances perturbed by smooth noise make the region borders wander like real ones.
    wobble = _smooth_noise(rng, (small_h, small_w), max(4, small_w // 12)) * 0.25 * small_w
    distances = np.stack(
        [
            np.hypot(xx - cx, yy - cy) + wobble * (index % 2 * 2 - 1)
            for index, (cx, cy) in enumerate(centres)
        ]
    )
    regions = classes[np.argmin(distances, axis=0)].astype(np.uint8)
    regions[~section] = GLASS
    return np.asarray(cv2.resize(regions, (width, height), interpolation=cv2.INTER_NEAREST))


def paint_tissue_type_slide(
    seed: int,
    width: int = DEFAULT_WIDTH_PX,
    height: int = DEFAULT_HEIGHT_PX,
    mpp_um: float = LEVEL0_MPP_UM,
) -> TissueTypeSlide:
    """A slide with every tissue type planted in its own regions (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    cv2.setRNGSeed(seed)
    shape = (height, width)
    regions = plant_regions(rng, shape)
    hema = np.zeros(shape, np.float32)
    eosin = np.zeros(shape, np.float32)
    for index, label in enumerate(TISSUE_TYPES):
        inside = regions == index
        if inside.any():
            painted_h, painted_e = PAINTERS[label](rng, shape, mpp_um)
            hema[inside] = painted_h[inside]
            eosin[inside] = painted_e[inside]
    # Staining differs from slide to slide (batch, thickness): the held-out slides are new.
    hema *= rng.uniform(0.75, 1.25)
    eosin *= rng.uniform(0.75, 1.25)
    grain = rng.standard_normal(shape, dtype=np.float32) * 0.02 * (regions != GLASS)
    rgb = compose(hema + grain, eosin + grain)
    noise = rng.standard_normal(rgb.shape, dtype=np.float32) * 2.0
    rgb = np.clip(rgb + noise, 0, 255).astype(np.uint8)
    return TissueTypeSlide(rgb=rgb, regions=regions, mpp_um=mpp_um)


def write_tissue_type_slide(
    path: Path,
    seed: int,
    width: int = DEFAULT_WIDTH_PX,
    height: int = DEFAULT_HEIGHT_PX,
) -> TissueTypeSlide:
    """The slide as a JPEG pyramidal TIFF (256-px tiles, levels 2x apart) at ``path``."""
    slide = paint_tissue_type_slide(seed, width, height)
    write_tiff_pyramid(path, slide.rgb, slide.mpp_um)
    return slide

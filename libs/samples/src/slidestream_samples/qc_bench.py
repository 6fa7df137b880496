"""The QC benchmark's slide: a large pyramidal tiled TIFF with a planted tissue map.

Built from pre-encoded tiles of each kind (tissue with nuclei in H&E optical density, glass,
defocused tissue) painted at ~1 µm/px and area-averaged to each level's scale, laid out by one
tissue map at level-0 tile resolution (about a third of the slide; tiles across a boundary are
composed from their parts) so that every level shows the same tissue. The map is the planted
truth QC's measures are compared with.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import cv2
import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_samples import painting

LEVEL0_MPP = 0.25
"""Level-0 spacing: a 40x scan."""
TILE_PX = 256
SEED_TILES_PER_KIND = 6
JPEG_QUALITY = 85
DEFOCUS_SIGMA_UM = 4.0
"""Gaussian sigma of the planted defocus, in µm (a few µm out of the focal plane at 40x)."""
SENSOR_NOISE_SD = 1.5
"""Camera noise (grey levels) added after the optics, so a defocused tile is noisy as a scan is."""
DefocusKind = Literal["gaussian", "motion"]
"""``gaussian``: out of the focal plane; ``motion``: a streak along the scan axis (x) of length
``defocus_um``, as stage motion or a stitching seam leaves."""
DEFOCUSED_TISSUE_SHARE = 0.2
"""Share of the tissue (its left part) planted out of focus."""
TISSUE_SHARE = 0.33
"""Share of the slide planted as tissue (QC's benchmark: about a third, as on many biopsies)."""
SLIDE_VERSION = 3
"""Part of the cached slide's name: bump it when the painting changes."""
GLASS, TISSUE, DEFOCUSED = 0, 1, 2
KIND_NAMES = ("glass", "tissue", "blurred")

SeedTiles = dict[str, list[bytes]]
DecodedTiles = dict[str, list[npt.NDArray[np.uint8]]]


def _paint_mpp(mpp_um: float) -> float:
    """Spacing the seed tiles of a level are painted at before being shrunk to the level.

    A coarse level painted directly at its own spacing has nuclei of at least one whole pixel
    (64 µm² at 8 µm/px, against ~30 µm² for a 6 µm nucleus), so its tissue comes out nearly
    black. A scanner's coarse levels are area averages of the fine ones: paint at 1 µm/px (at
    most 8x finer, to keep the canvas small) and shrink with area averaging.
    """
    return max(min(mpp_um, 1.0), mpp_um / 8)


def defocus(
    tile: npt.NDArray[np.uint8], mpp_um: float, defocus_um: float, kind: DefocusKind
) -> npt.NDArray[np.uint8]:
    """``tile`` (at ``mpp_um``) as the optics would have blurred it."""
    extent_px = defocus_um / mpp_um
    if kind == "gaussian":
        return np.asarray(cv2.GaussianBlur(tile, (0, 0), max(0.3, extent_px)), np.uint8)
    length = max(1, round(extent_px))
    kernel = np.full((1, length), 1 / length, np.float32)
    return np.asarray(cv2.filter2D(tile, -1, kernel, borderType=cv2.BORDER_REFLECT), np.uint8)


def _with_sensor_noise(tile: npt.NDArray[np.uint8], rng: np.random.Generator) -> bytes:
    noisy = tile.astype(np.float32) + rng.normal(0.0, SENSOR_NOISE_SD, tile.shape)
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    return bytes(imagecodecs.jpeg8_encode(image, level=JPEG_QUALITY))


def seed_tiles(
    mpp_um: float,
    seed: int,
    defocus_um: float = DEFOCUS_SIGMA_UM,
    defocus_kind: DefocusKind = "gaussian",
) -> SeedTiles:
    """Pre-encoded tiles of each kind, painted at this level's scale."""
    rng = np.random.default_rng(seed)
    kinds: SeedTiles = {"glass": [], "tissue": [], "blurred": []}
    paint_mpp = _paint_mpp(mpp_um)
    canvas_px = round(TILE_PX * mpp_um / paint_mpp)
    for index in range(SEED_TILES_PER_KIND):
        # Painted larger than needed and cut from the middle: the painter leaves glass in
        # the corners of its canvas.
        margin = canvas_px // 8
        painted = painting.paint_tissue(
            canvas_px + 2 * margin,
            canvas_px + 2 * margin,
            seed=seed * 100 + index,
            tissue_share=0.999,
            mpp_um=paint_mpp,
        ).rgb[margin : margin + canvas_px, margin : margin + canvas_px]
        tissue = np.asarray(
            cv2.resize(painted, (TILE_PX, TILE_PX), interpolation=cv2.INTER_AREA), np.uint8
        )
        glass = painting.paint_tissue(TILE_PX, TILE_PX, seed=index, mpp_um=mpp_um, empty=True).rgb
        blurred = defocus(tissue, mpp_um, defocus_um, defocus_kind)
        for kind, image in (("tissue", tissue), ("glass", glass), ("blurred", blurred)):
            kinds[kind].append(_with_sensor_noise(image, rng))
    return kinds


def tissue_map(
    columns: int,
    rows: int,
    *,
    tissue_share: float = TISSUE_SHARE,
    defocused_share: float = DEFOCUSED_TISSUE_SHARE,
) -> npt.NDArray[np.uint8]:
    """GLASS, TISSUE or DEFOCUSED per level-0 tile: the slide's planted truth.

    About ``tissue_share`` of the slide is tissue (a third by default); the left
    ``defocused_share`` of the tissue (by columns) is out of focus.
    """
    painted = painting.paint_tissue(columns * 4, rows * 4, seed=11, tissue_share=tissue_share)
    share = cv2.resize(
        painted.tissue.astype(np.float32), (columns, rows), interpolation=cv2.INTER_AREA
    )
    kinds = (share >= 0.5).astype(np.uint8)
    per_column = kinds.sum(axis=0).cumsum()
    cut = int(np.searchsorted(per_column, defocused_share * per_column[-1]))
    kinds[:, :cut][kinds[:, :cut] == TISSUE] = DEFOCUSED
    return kinds


def planted_truth(kinds: npt.NDArray[np.uint8]) -> dict[str, float]:
    """The tissue share of the slide and the defocused share of the tissue."""
    tissue = int((kinds != GLASS).sum())
    return {
        "tissue_fraction": tissue / kinds.size,
        "blur_fraction": int((kinds == DEFOCUSED).sum()) / max(1, tissue),
    }


def _level_tiles(
    kind_map: npt.NDArray[np.uint8],
    grid: tuple[int, int],
    span: int,
    seeds: SeedTiles,
    decoded: DecodedTiles,
) -> Iterator[bytes]:
    """The JPEG tiles of one level, row by row; ``grid`` is its (columns, rows) and ``span``
    the level-0 tiles along each side of one of its tiles."""
    columns, rows = grid
    for row in range(rows):
        for column in range(columns):
            cells = kind_map[row * span : (row + 1) * span, column * span : (column + 1) * span]
            variant = (row * 7 + column * 13) % SEED_TILES_PER_KIND
            if cells.size == 0:
                yield seeds["glass"][variant]
            elif (cells == cells.flat[0]).all():
                yield seeds[KIND_NAMES[cells.flat[0]]][variant]
            else:
                # A tile across a boundary: each part from its own kind's tile, so every level
                # shows the same tissue and the same defocus.
                full = np.full((span, span), GLASS, np.uint8)
                full[: cells.shape[0], : cells.shape[1]] = cells
                where = cv2.resize(full, (TILE_PX, TILE_PX), interpolation=cv2.INTER_NEAREST)
                tile = decoded["glass"][variant].copy()
                for kind in (TISSUE, DEFOCUSED):
                    inside = where == kind
                    tile[inside] = decoded[KIND_NAMES[kind]][variant][inside]
                yield bytes(imagecodecs.jpeg8_encode(tile, level=JPEG_QUALITY))


def write_slide(
    path: Path,
    width: int,
    height: int,
    *,
    tissue_share: float = TISSUE_SHARE,
    defocused_share: float = DEFOCUSED_TISSUE_SHARE,
    defocus_um: float = DEFOCUS_SIGMA_UM,
    defocus_kind: DefocusKind = "gaussian",
) -> None:
    """The slide: JPEG tiles of 256 px, every level 2x smaller down to ~256 px (BigTIFF);
    ``tissue_share`` and ``defocused_share`` as in :func:`tissue_map`; the defocused tissue
    blurred as :func:`defocus` says."""
    kind_map = tissue_map(
        math.ceil(width / TILE_PX),
        math.ceil(height / TILE_PX),
        tissue_share=tissue_share,
        defocused_share=defocused_share,
    )
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        level, level_w, level_h = 0, width, height
        while True:
            mpp = LEVEL0_MPP * width / level_w
            seeds = seed_tiles(mpp, level, defocus_um, defocus_kind)
            decoded = {
                kind: [imagecodecs.jpeg8_decode(tile) for tile in tiles]
                for kind, tiles in seeds.items()
            }
            grid = (math.ceil(level_w / TILE_PX), math.ceil(level_h / TILE_PX))
            tif.write(
                # 2**level: the level-0 tiles along each side of one tile of this level.
                _level_tiles(kind_map, grid, 2**level, seeds, decoded),
                shape=(level_h, level_w, 3),
                dtype=np.uint8,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                photometric="rgb",
                resolution=(1e4 / mpp, 1e4 / mpp),
                resolutionunit="CENTIMETER",
                subfiletype=1 if level else 0,
            )
            if max(level_w, level_h) <= 2 * TILE_PX:
                break
            level, level_w, level_h = level + 1, level_w // 2, level_h // 2

"""Labelled tiles for the reference models, read from generated slides by the one slide reader.

Each slide of :mod:`slidestream_samples.tissue_types` is written as a pyramidal TIFF and opened
with :func:`slidestream_wsi.pyramid.open_source`; per tissue type, :func:`plan_tiles` over that
type's planted region (as inference plans over QC's tissue mask) keeps the tiles that lie almost
wholly in it, and :func:`iter_tile_batches` reads them at the models' spacing: the same pixels,
the same resampling, that inference will feed the models. Training and held-out tiles come from
different slides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from slidestream_samples.tissue_types import (
    DEFAULT_HEIGHT_PX,
    DEFAULT_WIDTH_PX,
    TISSUE_TYPES,
    write_tissue_type_slide,
)
from slidestream_wsi.pyramid import iter_tile_batches, open_source, plan_tiles

TILE_SIZE_PX = 64
TILE_MPP_UM = 2.0
"""64 px at 2 µm/px (5x): 128 µm, two fat cells or a few hundred nuclei per tile."""
MIN_TYPE_FRACTION = 0.75
"""A tile is labelled with a type when at least this share of it lies in the type's region (the
rest may be another type or glass, as at the borders inference also reads)."""
TRAIN_SEEDS = tuple(range(1, 9))
HELD_OUT_SEEDS = tuple(range(101, 104))
SPLITS = {"train": TRAIN_SEEDS, "held_out": HELD_OUT_SEEDS}
MASK_DOWNSAMPLE = 4
"""The region masks handed to the planner: 1/4 of level 0 is 32 mask pixels per tile side."""
READ_BATCH_TILES = 128


@dataclass(frozen=True, slots=True)
class LabelledTiles:
    pixels: npt.NDArray[np.uint8]
    """(N, TILE_SIZE_PX, TILE_SIZE_PX, 3) RGB."""
    labels: npt.NDArray[np.int64]
    """Index into :data:`TISSUE_TYPES`."""
    slides: npt.NDArray[np.int64]
    """The seed of the slide each tile was read from."""
    origins_px: npt.NDArray[np.int64]
    """(N, 2) level-0 x, y of each tile."""


def read_slide_tiles(
    path: Path, seed: int, width: int = DEFAULT_WIDTH_PX, height: int = DEFAULT_HEIGHT_PX
) -> LabelledTiles:
    """Write slide ``seed`` at ``path`` and read back its labelled tiles."""
    slide = write_tissue_type_slide(path, seed, width, height)
    small_regions = slide.regions[::MASK_DOWNSAMPLE, ::MASK_DOWNSAMPLE]
    pixels, labels, origins = [], [], []
    with open_source([path]) as source:
        for index in range(len(TISSUE_TYPES)):
            plan = plan_tiles(
                source,
                mpp_um=TILE_MPP_UM,
                tile_size_px=TILE_SIZE_PX,
                mask=small_regions == index,
                min_tissue_fraction=MIN_TYPE_FRACTION,
            )
            for batch in iter_tile_batches(source, plan, READ_BATCH_TILES):
                pixels.append(batch.pixels)
                origins.append(batch.origins_px)
                labels.append(np.full(len(batch.pixels), index, np.int64))
    count = sum(len(part) for part in labels)
    return LabelledTiles(
        pixels=np.concatenate(pixels)
        if pixels
        else np.empty((0, TILE_SIZE_PX, TILE_SIZE_PX, 3), np.uint8),
        labels=np.concatenate(labels) if labels else np.empty(0, np.int64),
        slides=np.full(count, seed, np.int64),
        origins_px=np.concatenate(origins) if origins else np.empty((0, 2), np.int64),
    )


def concatenate(parts: list[LabelledTiles]) -> LabelledTiles:
    return LabelledTiles(
        pixels=np.concatenate([part.pixels for part in parts]).astype(np.uint8),
        labels=np.concatenate([part.labels for part in parts]),
        slides=np.concatenate([part.slides for part in parts]),
        origins_px=np.concatenate([part.origins_px for part in parts]),
    )


def build_dataset(directory: Path) -> dict[str, dict[str, int]]:
    """Slides under ``directory/slides``, ``train.npz`` and ``held_out.npz`` (pixels, labels,
    slides, origins_px) and ``meta.json`` (labels, tile size, spacing); returns tiles per split
    and type."""
    slides_dir = directory / "slides"
    slides_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for split, seeds in SPLITS.items():
        tiles = concatenate(
            [read_slide_tiles(slides_dir / f"tissue-types-{seed}.tiff", seed) for seed in seeds]
        )
        np.savez(
            directory / f"{split}.npz",
            pixels=tiles.pixels,
            labels=tiles.labels,
            slides=tiles.slides,
            origins_px=tiles.origins_px,
        )
        per_type = np.bincount(tiles.labels, minlength=len(TISSUE_TYPES))
        counts[split] = {label: int(n) for label, n in zip(TISSUE_TYPES, per_type, strict=True)}
    meta = {
        "labels": list(TISSUE_TYPES),
        "tile_size_px": TILE_SIZE_PX,
        "mpp_um": TILE_MPP_UM,
        "splits": {split: list(seeds) for split, seeds in SPLITS.items()},
        "tiles": counts,
    }
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return counts

"""Labelled tiles: read through the slide reader at the models' spacing, labelled by region."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slidestream_samples.reference_models.dataset import (
    HELD_OUT_SEEDS,
    MIN_TYPE_FRACTION,
    TILE_MPP_UM,
    TILE_SIZE_PX,
    TRAIN_SEEDS,
    read_slide_tiles,
)
from slidestream_samples.tissue_types import LEVEL0_MPP_UM, TISSUE_TYPES, paint_tissue_type_slide

WIDTH_PX, HEIGHT_PX = 1536, 1024
SEED = 5
MASK_SLACK = 0.05
"""The planner measures the type's share on a 1/4-scale mask; level 0 may differ by this much."""


def test_held_out_slides_are_not_training_slides() -> None:
    assert not set(TRAIN_SEEDS) & set(HELD_OUT_SEEDS)


def test_each_tile_lies_mostly_in_the_region_of_its_label(tmp_path: Path) -> None:
    tiles = read_slide_tiles(tmp_path / "slide.tiff", SEED, WIDTH_PX, HEIGHT_PX)
    regions = paint_tissue_type_slide(SEED, WIDTH_PX, HEIGHT_PX).regions
    assert tiles.pixels.shape[1:] == (TILE_SIZE_PX, TILE_SIZE_PX, 3)
    assert tiles.pixels.dtype == np.uint8
    assert set(tiles.labels) == set(range(len(TISSUE_TYPES)))
    assert (tiles.slides == SEED).all()
    side_px = round(TILE_SIZE_PX * TILE_MPP_UM / LEVEL0_MPP_UM)
    for label, (x, y) in zip(tiles.labels, tiles.origins_px, strict=True):
        window = regions[y : y + side_px, x : x + side_px]
        share = np.count_nonzero(window == label) / (side_px * side_px)
        assert share >= MIN_TYPE_FRACTION - MASK_SLACK


def test_tiles_are_the_slide_pixels_at_the_models_spacing(tmp_path: Path) -> None:
    tiles = read_slide_tiles(tmp_path / "slide.tiff", SEED, WIDTH_PX, HEIGHT_PX)
    rgb = paint_tissue_type_slide(SEED, WIDTH_PX, HEIGHT_PX).rgb.astype(np.float32)
    side_px = round(TILE_SIZE_PX * TILE_MPP_UM / LEVEL0_MPP_UM)
    x, y = tiles.origins_px[0]
    # Level 1 is level 0 area-averaged 2x: compare with the same average (JPEG: a few levels).
    window = rgb[y : y + side_px, x : x + side_px]
    expected = window.reshape(TILE_SIZE_PX, 2, TILE_SIZE_PX, 2, 3).mean(axis=(1, 3))
    assert np.abs(tiles.pixels[0].astype(np.float32) - expected).mean() < 6

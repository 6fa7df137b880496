"""Tiles at a chosen magnification over a tissue mask: which tiles, where, what pixels, and
memory bounded by the batch."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import tifffile

from slidestream_wsi.pyramid import SourceSlide, iter_tile_batches, open_source, plan_tiles

RNG_SEED = 11


def _level_pixels(files: list[Path], index: int) -> npt.NDArray[np.uint8]:
    """A whole level decoded by tifffile: the reference the tiles are compared with."""
    with tifffile.TiffFile(files[0]) as tif:
        return np.asarray(tif.series[0].levels[index].asarray(), np.uint8)


def _all_tiles(
    slide: SourceSlide, **plan: object
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    tile_plan = plan_tiles(slide, **plan)  # type: ignore[arg-type]
    batches = list(iter_tile_batches(slide, tile_plan, batch_size=5))
    assert all(len(batch.pixels) <= 5 for batch in batches)
    pixels = np.concatenate([batch.pixels for batch in batches])
    origins = np.concatenate([batch.origins_px for batch in batches])
    return pixels, origins


def test_tiles_at_a_level_spacing_are_that_level_cut_out(planted: dict[str, object]) -> None:
    files = list(planted["svs"].files)  # type: ignore[attr-defined]
    # svs: 2048 x 1536 at 0.499 µm/px, levels at 1, 2, 4 times that.
    mask = np.random.default_rng(RNG_SEED).random((6, 8)) < 0.5  # one mask pixel per tile
    with open_source(files) as slide:
        pixels, origins = _all_tiles(
            slide, mpp_um=0.998, tile_size_px=128, mask=mask, min_tissue_fraction=0.5
        )
    assert len(pixels) == mask.sum()
    rows, columns = np.nonzero(mask)
    assert origins.tolist() == [[c * 256, r * 256] for r, c in zip(rows, columns, strict=True)]
    level1 = _level_pixels(files, 1)
    for tile, (x0, y0) in zip(pixels, origins, strict=True):
        x, y = x0 // 2, y0 // 2
        assert np.array_equal(tile, level1[y : y + 128, x : x + 128])


def test_tiles_between_levels_are_resampled_from_the_finer_level(
    planted: dict[str, object],
) -> None:
    files = list(planted["svs"].files)  # type: ignore[attr-defined]
    mask = np.ones((3, 4), bool)
    with open_source(files) as slide:
        plan = plan_tiles(slide, mpp_um=0.75, tile_size_px=64, mask=mask, min_tissue_fraction=1)
        batches = list(iter_tile_batches(slide, plan, batch_size=7))
    # 0.75 µm/px lies between level 0 (0.499) and level 1 (0.998): level 0, 96 px per tile.
    assert plan.level.index == 0 and plan.span_px == round(64 * 0.75 / 0.499)
    assert plan.mpp_um == pytest.approx(plan.span_px * 0.499 / 64)
    columns, rows = -(-2048 // plan.span_px), -(-1536 // plan.span_px)
    assert sum(len(batch.pixels) for batch in batches) == columns * rows
    level0 = _level_pixels(files, 0)
    padded = np.full((rows * plan.span_px, columns * plan.span_px, 3), 255, np.uint8)
    padded[:1536, :2048] = level0
    for batch in batches:
        for tile, (x, y) in zip(batch.pixels, batch.origins_px, strict=True):
            region = padded[y : y + plan.span_px, x : x + plan.span_px]
            expected = cv2.resize(region, (64, 64), interpolation=cv2.INTER_AREA)
            assert np.array_equal(tile, expected)


def test_tissue_fraction_counts_mask_pixels_inside_each_tile(planted: dict[str, object]) -> None:
    files = list(planted["dicom"].files)  # type: ignore[attr-defined]
    # dicom: 2048 x 1536 at 0.25 µm/px; tiles of 256 px at 0.5 µm/px: a 4 x 3 grid, read from
    # the 1024 x 768 level. The mask has 4 x 4 pixels per tile.
    mask = np.zeros((12, 16), bool)
    mask[0:4, 0:4] = True  # tile (0, 0): all tissue
    mask[4:6, 4:8] = True  # tile (1, 1): half
    mask[8, 12] = True  # tile (3, 2): one sixteenth
    with open_source(files) as slide:
        half = plan_tiles(slide, mpp_um=0.5, tile_size_px=256, mask=mask, min_tissue_fraction=0.5)
        some = plan_tiles(slide, mpp_um=0.5, tile_size_px=256, mask=mask, min_tissue_fraction=0.05)
        pixels = np.concatenate([b.pixels for b in iter_tile_batches(slide, half, batch_size=1)])
        level1 = slide.levels[1]
        reference = level1.decode(level1.read_raw(level1.columns + 1), level1.columns + 1)
    assert half.level.index == 1
    assert half.origins_px.tolist() == [[0, 0], [512, 512]]
    assert some.origins_px.tolist() == [[0, 0], [512, 512], [1536, 1024]]
    # The DICOM frames are 256 px: tile (1, 1) is frame (1, 1) of level 1, decoded alone.
    assert np.array_equal(pixels[1], reference)


def test_a_mask_coarser_than_the_grid_decides_each_tile_by_its_centre(
    planted: dict[str, object],
) -> None:
    files = list(planted["svs"].files)  # type: ignore[attr-defined]
    mask = np.array([[True, False]])  # left half of the slide is tissue
    with open_source(files) as slide:
        plan = plan_tiles(slide, mpp_um=1.996, tile_size_px=128, mask=mask, min_tissue_fraction=1)
    # Level 2 (512 x 384) in tiles of 128: 4 x 3; the left two columns have their centres left.
    assert plan.level.index == 2
    assert sorted(plan.origins_px.tolist()) == sorted(
        [[column * 512, row * 512] for row in range(3) for column in range(2)]
    )


LARGE_SIDE_PX = 12_288
"""Level 0 of the generated slide: 12288² RGB is 432 MiB decoded."""
TILE_PX = 256
MEMORY_BOUND_BYTES = 32 * 1024 * 1024
"""Peak Python-heap allocations while reading: the batch (8 x 256² x 3 = 1.5 MiB), a region,
the decoded-tile cache (16 MiB at most) and codec buffers, far below a level."""


def _tiles(count: int) -> Iterator[npt.NDArray[np.uint8]]:
    rng = np.random.default_rng(RNG_SEED)
    patterns = [rng.integers(0, 256, (TILE_PX, TILE_PX, 3), np.uint8) for _ in range(4)]
    for index in range(count):
        yield patterns[index % len(patterns)]


def test_memory_stays_bounded_by_the_batch_on_a_large_slide(tmp_path: Path) -> None:
    path = tmp_path / "large.tif"
    side = LARGE_SIDE_PX
    tifffile.imwrite(
        path,
        _tiles((side // TILE_PX) ** 2),
        shape=(side, side, 3),
        dtype=np.uint8,
        tile=(TILE_PX, TILE_PX),
        photometric="rgb",
        compression="jpeg",
        resolution=(1e4 / 0.25, 1e4 / 0.25),
        resolutionunit="CENTIMETER",
    )
    grid = side // TILE_PX
    mask = np.zeros((grid, grid), bool)
    mask[: grid // 2, : grid // 2] = True  # a quarter of the slide: 576 tiles
    with open_source([path]) as slide:
        plan = plan_tiles(
            slide, mpp_um=0.25, tile_size_px=TILE_PX, mask=mask, min_tissue_fraction=1
        )
        tracemalloc.start()
        try:
            count = 0
            for batch in iter_tile_batches(slide, plan, batch_size=8):
                count += len(batch.pixels)
                del batch
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        read_fraction = slide.bytes_read / path.stat().st_size
    assert count == (grid // 2) ** 2
    assert peak < MEMORY_BOUND_BYTES < side * side * 3
    assert read_fraction < 0.5  # only the tiles under tissue were read

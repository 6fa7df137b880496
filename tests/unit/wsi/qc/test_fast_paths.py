"""The shortcuts that make QC fast hold their accuracy: the working image, sampled focus tiles,
luminance-only tile decoding, tabulated colour deconvolution, hole filling."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

import slidestream_samples as samples
from slidestream_wsi.qc import open_dicom_pyramid, open_tiff_pyramid, read_dicom_levels
from slidestream_wsi.qc.focus import measure_focus, score_patches
from slidestream_wsi.qc.focus_sampling import sample_size
from slidestream_wsi.qc.levels import choose_levels
from slidestream_wsi.qc.masks import fill_holes, grey_percentile
from slidestream_wsi.qc.run import focus_tile_reader
from slidestream_wsi.qc.segment import WORK_MIN_LONG_SIDE_PX, WORK_MPP, working_image
from slidestream_wsi.qc.stain import rgb_to_hed
from tests.support.qc import BLUR_TOLERANCE, QcCase


@pytest.mark.parametrize("count", [1, 2, 3, 10, 1001, 50_000])
def test_grey_percentile_is_numpys(count: int) -> None:
    rng = np.random.default_rng(count)
    grey = rng.integers(0, 256, (1, count), dtype=np.uint8)
    mask = rng.random((1, count)) < 0.7
    mask[0, 0] = True
    luminance = (grey / np.float32(255)).astype(np.float32)
    for percent in (0, 5, 25, 50, 75, 95, 99, 100):
        expected = float(np.percentile(luminance[mask], percent))
        assert grey_percentile(grey, mask, percent) == pytest.approx(expected, abs=1e-6)
        expected_all = float(np.percentile(luminance, percent))
        assert grey_percentile(grey, None, percent) == pytest.approx(expected_all, abs=1e-6)


def test_working_image_spacing_and_floor() -> None:
    # An 8 µm/px level of a large slide: area-averaged to WORK_MPP.
    large = np.full((1250, 1562, 3), 200, np.uint8)
    small, mpp = working_image(large, 8.0)
    assert small.shape[:2] == (625, 781)
    assert mpp == pytest.approx(WORK_MPP, rel=0.01)
    # A small biopsy keeps WORK_MIN_LONG_SIDE_PX on its long side, whatever its spacing.
    biopsy = np.full((768, 1024, 3), 200, np.uint8)
    kept, kept_mpp = working_image(biopsy, 4.0)
    assert max(kept.shape[:2]) == WORK_MIN_LONG_SIDE_PX
    assert kept_mpp == pytest.approx(4.0 * 1024 / WORK_MIN_LONG_SIDE_PX)
    # Already coarse or already small: untouched, the same array.
    tiny = np.full((300, 400, 3), 200, np.uint8)
    assert working_image(tiny, 16.0)[0] is tiny
    assert working_image(biopsy, 20.0)[0] is biopsy


def test_hed_matches_scikit_image() -> None:
    from skimage.color import rgb2hed

    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
    pixels[:3] = ((0, 0, 0), (255, 255, 255), (120, 60, 200))
    expected = rgb2hed(pixels.reshape(-1, 1, 3)).reshape(-1, 3)
    np.testing.assert_allclose(rgb_to_hed(pixels), expected, rtol=1e-4, atol=1e-5)


def test_fill_holes_fills_enclosed_background_only() -> None:
    mask = np.zeros((40, 60), bool)
    mask[5:30, 5:30] = True
    mask[10:15, 10:15] = False  # an enclosed hole of 25 px
    mask[0:20, 40:50] = True
    mask[0:5, 43:47] = False  # a notch open to the image's top border: outside, not a hole
    filled = fill_holes(mask, 25)
    assert filled[10:15, 10:15].all()
    assert not filled[0:5, 43:47].any()
    assert not filled[35:, :].any()
    # A hole larger than the limit stays open.
    assert not fill_holes(mask, 24)[10:15, 10:15].any()


def test_sampled_focus_within_tolerance(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("blur30")
    truth = float((case.slide.truth["blur"] & case.slide.tissue).sum() / case.slide.tissue.sum())
    with open_tiff_pyramid(case.path) as source:
        choice = choose_levels(source.levels)
        rgb = source.read_level(choice.analysis.index)
        reader = focus_tile_reader(source, choice, rgb)
        ruled = measure_focus(case.analysis.tissue, choice.focus, reader)
        every = measure_focus(
            case.analysis.tissue, choice.focus, reader, tiles_to_score=lambda count: count
        )
        sampled = measure_focus(
            case.analysis.tissue, choice.focus, reader, tiles_to_score=lambda _count: 8
        )
    # Every tissue tile read, the rule's sample, and a sample of 8.
    assert sampled.tiles_read == 8 < ruled.tiles_read <= every.tiles_read
    assert every.tiles_read == every.estimate.units_total >= 16
    assert ruled.tiles_read == sample_size(every.tiles_read)
    assert ruled.blurred_fraction == pytest.approx(truth, abs=BLUR_TOLERANCE)
    # Only what was scored is in the scores (and the heat map): nothing filled in.
    assert 0 < sampled.patches_scored < every.patches_scored
    assert sampled.estimate.low <= truth <= sampled.estimate.high
    assert every.blurred_fraction == pytest.approx(truth, abs=BLUR_TOLERANCE)
    # A census has no sampling error; a sample of 8 has a real interval around its estimate.
    assert every.estimate.low == every.estimate.share == every.estimate.high
    assert sampled.estimate.low < sampled.blurred_fraction < sampled.estimate.high


def test_grey_tiles_are_the_luminance_of_the_rgb_tiles(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("clean")
    origins = [(0, 0), (256, 256), (768, 512)]
    with open_tiff_pyramid(case.path) as source:
        rgb_tiles = list(source.iter_tiles(1, origins))
        grey_tiles = list(source.iter_grey_tiles(1, origins))
    for (x, y, rgb), (gx, gy, grey) in zip(rgb_tiles, grey_tiles, strict=True):
        assert (x, y) == (gx, gy)
        assert grey.shape == rgb.shape[:2] and grey.dtype == np.uint8
        _assert_same_luminance(rgb, grey)


def test_grey_tiles_of_a_dicom_series(tmp_path: Path) -> None:
    files = samples.make_dicom_series(tmp_path).files
    levels = read_dicom_levels(files)
    with open_dicom_pyramid(files) as source:
        index = levels[-1].index
        rgb_tiles = list(source.iter_tiles(index))
        grey_tiles = list(source.iter_grey_tiles(index))
    assert len(rgb_tiles) == len(grey_tiles) > 0
    for (_, _, rgb), (_, _, grey) in zip(rgb_tiles, grey_tiles, strict=True):
        _assert_same_luminance(rgb, grey)


def _assert_same_luminance(rgb: npt.NDArray[np.uint8], grey: npt.NDArray[np.uint8]) -> None:
    """Y decoded alone vs the luma of the decoded RGB: they differ by rounding, and where an
    upsampled chroma sample pushes a channel past 0 or 255 (clipped), so in a few pixels more;
    the focus score of the two is the same."""
    assert grey.shape == rgb.shape[:2] and grey.dtype == np.uint8
    difference = np.abs(grey.astype(np.int16) - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert float(difference.mean()) < 0.5
    everywhere = np.ones(grey.shape, np.uint8)
    grid = (max(1, grey.shape[1] // 64), max(1, grey.shape[0] // 64))
    luma = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), np.uint8)
    from_rgb = score_patches(luma, everywhere, everywhere, grid).energy
    from_grey = score_patches(grey, everywhere, everywhere, grid).energy
    np.testing.assert_allclose(from_grey, from_rgb, rtol=0.1)

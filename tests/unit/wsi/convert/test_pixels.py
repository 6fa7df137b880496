"""The 2x2 box filter of generated levels: OpenCV's half-size INTER_AREA is used for speed, and
must give exactly the filter the docs state, (a + b + c + d + 2) >> 2 with the odd last column
averaged with itself."""

from __future__ import annotations

import numpy as np
import pytest

from slidestream_wsi.convert.pixels import Downsampler, fit_within, halve


def _reference_halve(block: np.ndarray) -> np.ndarray:
    if block.shape[1] % 2:
        block = np.concatenate([block, block[:, -1:]], axis=1)
    wide = block.astype(np.uint16)
    total = wide[0::2, 0::2] + wide[1::2, 0::2] + wide[0::2, 1::2] + wide[1::2, 1::2]
    return ((total + 2) >> 2).astype(np.uint8)


@pytest.mark.parametrize("height", [2, 6, 256])
@pytest.mark.parametrize("width", [1, 2, 3, 7, 256, 1001])
def test_halve_is_the_rounded_box_filter(height: int, width: int) -> None:
    rng = np.random.default_rng(height * 10_000 + width)
    block = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = _reference_halve(block)
    assert np.array_equal(halve(block), expected)
    # A band cut from a wider one (a view, as the pipeline passes) gives the same result.
    wide = np.concatenate([block, block[:, ::-1]], axis=1)
    assert np.array_equal(halve(wide[:, :width]), expected)


def test_rounding_is_half_up_on_the_sum() -> None:
    # Sums 0+0+1+1 = 2 -> (2 + 2) >> 2 = 1 and 0+0+0+1 = 1 -> 0: not truncation, not banker's.
    block = np.zeros((2, 4, 3), np.uint8)
    block[1, 0:2] = 1
    block[1, 3] = 1
    assert halve(block)[0, :, 0].tolist() == [1, 0]


def test_downsampler_carries_odd_rows_across_bands() -> None:
    rng = np.random.default_rng(7)
    level = rng.integers(0, 256, (9, 5, 3), dtype=np.uint8)
    out: list[np.ndarray] = []
    sampler = Downsampler(5, 9, out.append)
    for band in (level[:3], level[3:4], level[4:9]):
        sampler.push(band)
    sampler.finish()
    padded = np.concatenate([level, level[-1:]], axis=0)  # the odd last row, repeated
    assert np.array_equal(np.concatenate(out, axis=0), _reference_halve(padded))


def test_fit_within_shrinks_the_long_side_and_keeps_small_images() -> None:
    large = np.full((1500, 3000, 3), 200, np.uint8)
    fitted = fit_within(large, 1024)
    assert fitted.shape == (512, 1024, 3)
    assert int(fitted.min()) == int(fitted.max()) == 200  # an area average of a flat image
    small = np.zeros((100, 50, 3), np.uint8)
    assert fit_within(small, 1024).shape == (100, 50, 3)

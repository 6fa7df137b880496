"""An uploaded patch made into one model tile: bounded decoding of PNG, JPEG and TIFF, and the
centre crop resampled with the filter slide tiles get."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pytest
import tifffile
from PIL import Image

from slidestream_inference.domain.patches import (
    MAX_PATCH_BYTES,
    MAX_PATCH_SIDE_PX,
    PatchTooLargeError,
    UndecodablePatchError,
    decode_patch,
    patch_tile,
)
from slidestream_wsi.pyramid import resample_square


def gradient(height: int, width: int) -> npt.NDArray[np.uint8]:
    rows, columns = np.mgrid[0:height, 0:width]
    return np.stack(
        [(rows * 3) % 256, (columns * 5) % 256, (rows + columns) % 256], axis=-1
    ).astype(np.uint8)


def encoded(rgb: npt.NDArray[np.uint8], image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["PNG", "TIFF"])
def test_lossless_patches_decode_to_their_exact_pixels(image_format: str) -> None:
    rgb = gradient(40, 70)
    np.testing.assert_array_equal(decode_patch(encoded(rgb, image_format)), rgb)


def test_a_tifffile_tiff_and_a_jpeg_decode_to_rgb() -> None:
    rgb = gradient(32, 48)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rgb, photometric="rgb")
    np.testing.assert_array_equal(decode_patch(buffer.getvalue()), rgb)
    flat = np.full((32, 48, 3), (200, 120, 180), np.uint8)
    jpeg = decode_patch(encoded(flat, "JPEG"))
    assert jpeg.shape == (32, 48, 3) and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - flat).max() <= 3  # JPEG's rounding of a flat colour


def test_transparency_is_composited_over_white_glass() -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255  # the top half opaque red, the bottom half transparent
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    rgb = decode_patch(buffer.getvalue())
    assert (rgb[:4] == (255, 0, 0)).all()
    assert (rgb[4:] == 255).all()


def test_a_side_over_the_limit_is_refused_from_the_header() -> None:
    wide = encoded(np.zeros((2, MAX_PATCH_SIDE_PX + 1, 3), np.uint8), "PNG")
    with pytest.raises(PatchTooLargeError, match=f"{MAX_PATCH_SIDE_PX + 1}x2 px"):
        decode_patch(wide)
    assert decode_patch(encoded(np.zeros((2, MAX_PATCH_SIDE_PX, 3), np.uint8), "PNG")).shape == (
        2,
        MAX_PATCH_SIDE_PX,
        3,
    )


def test_too_many_bytes_are_refused_before_decoding() -> None:
    with pytest.raises(PatchTooLargeError, match="bytes"):
        decode_patch(b"\x89PNG" + bytes(MAX_PATCH_BYTES))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not an image at all", id="text"),
        pytest.param(encoded(gradient(8, 8), "PNG")[:40], id="truncated-png"),
        pytest.param(encoded(gradient(8, 8), "GIF"), id="gif"),
    ],
)
def test_what_is_not_a_png_jpeg_or_tiff_that_decodes_is_undecodable(data: bytes) -> None:
    with pytest.raises(UndecodablePatchError):
        decode_patch(data)


def test_the_centred_square_is_resampled_as_slide_tiles_are() -> None:
    rgb = gradient(300, 500)
    tile = patch_tile(rgb, 64)
    assert tile.shape == (64, 64, 3)
    np.testing.assert_array_equal(tile, resample_square(rgb[:, 100:400], 64))
    tall = gradient(90, 30)
    np.testing.assert_array_equal(patch_tile(tall, 60), resample_square(tall[30:60], 60))


def test_a_patch_of_the_tile_size_is_used_as_it_is() -> None:
    rgb = gradient(64, 64)
    np.testing.assert_array_equal(patch_tile(rgb, 64), rgb)

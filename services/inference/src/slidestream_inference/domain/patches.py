"""An uploaded image patch made into one tile of a model's input, for "slides like this one".

The rule, stated once: the patch's largest centred square is kept (a tile is square, and the
centre is what a person framing a region means) and resampled to the card's ``tile_size_px``
with the filter every slide tile gets (:func:`slidestream_wsi.pyramid.resample_square`: area
averaging to shrink, bilinear to enlarge). Nothing rescales for spacing: a patch carries no
trustworthy µm/px, so the caller sends tissue at about the card's ``mpp_um`` (a square of
``tile_size_px`` pixels at that spacing needs no resampling at all). The tile is then
normalised by :func:`~slidestream_inference.domain.tensors.normalise`, as slide tiles are.

Bounded before decoding: PNG, JPEG and TIFF only, at most :data:`MAX_PATCH_SIDE_PX` a side
(read from the header, so a small file that inflates to gigapixels is refused unread).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from slidestream_wsi.pyramid import BACKGROUND_RGB, resample_square

MAX_PATCH_SIDE_PX = 4096
MAX_PATCH_BYTES = 20 * 1024 * 1024
PATCH_FORMATS = ("PNG", "JPEG", "TIFF")
"""Pillow's names of the formats a patch may come in."""

Rgb = npt.NDArray[np.uint8]


class PatchTooLargeError(ValueError):
    """Over :data:`MAX_PATCH_BYTES` or :data:`MAX_PATCH_SIDE_PX` (HTTP 413)."""


class UndecodablePatchError(ValueError):
    """Not a PNG, JPEG or TIFF image that decodes (HTTP 422)."""


def check_patch_bytes(size_bytes: int) -> None:
    if size_bytes > MAX_PATCH_BYTES:
        raise PatchTooLargeError(
            f"the image is {size_bytes} bytes; a patch holds at most {MAX_PATCH_BYTES}"
        )


def decode_patch(data: bytes) -> Rgb:
    """``data`` as ``(H, W, 3)`` RGB; transparency is composited over white, the colour of
    empty glass (:data:`~slidestream_wsi.pyramid.BACKGROUND_RGB`)."""
    check_patch_bytes(len(data))
    try:
        # Pillow's own decompression-bomb guard is a warning below its error threshold: the
        # side check is the limit here, so the warning must not escape as noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=PATCH_FORMATS) as image:
                _check_side(*image.size)
                image.load()
                rgb = _opaque_rgb(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise UndecodablePatchError(
            f"not a PNG, JPEG or TIFF image that decodes: {error}"
        ) from None
    except PatchTooLargeError:
        raise
    except ValueError as error:  # Pillow's word for pixel data it cannot unpack
        raise UndecodablePatchError(f"the image does not decode: {error}") from None
    if min(rgb.shape[:2]) < 1:
        raise UndecodablePatchError("the image has no pixels")
    return rgb


def _check_side(width: int, height: int) -> None:
    if max(width, height) > MAX_PATCH_SIDE_PX:
        raise PatchTooLargeError(
            f"the image is {width}x{height} px; a patch is at most "
            f"{MAX_PATCH_SIDE_PX}x{MAX_PATCH_SIDE_PX}"
        )


def _opaque_rgb(image: Image.Image) -> Rgb:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, (BACKGROUND_RGB, BACKGROUND_RGB, BACKGROUND_RGB, 255))
        return np.asarray(Image.alpha_composite(white, image.convert("RGBA")).convert("RGB"))
    return np.asarray(image.convert("RGB"), np.uint8)


def patch_tile(rgb: Rgb, tile_size_px: int) -> Rgb:
    """The largest centred square of ``rgb``, resampled to ``tile_size_px`` a side."""
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.ascontiguousarray(rgb[top : top + side, left : left + side])
    return resample_square(square, tile_size_px)

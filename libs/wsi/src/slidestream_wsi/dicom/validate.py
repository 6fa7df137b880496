"""Bounded validation of one DICOM WSI instance: declared sizes, then one decoded frame."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np

from slidestream_wsi.detect import WSI_SOP_CLASS_UID, Container, SlideFormat
from slidestream_wsi.dicom.pixeldata import read_dicom_header, read_fragment
from slidestream_wsi.errors import CorruptSlideError, SlideBombError, UnsupportedFormatError
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.validate import AssociatedImageInfo, Deadline, LevelInfo, SlideInfo

# DICOM PS3.5 Table A-1 / PS3.6 transfer syntaxes -> imagecodecs decoder of one frame.
_DECODERS: dict[str, Callable[..., Any]] = {
    "1.2.840.10008.1.2.4.50": imagecodecs.jpeg8_decode,  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": imagecodecs.jpeg8_decode,  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57": imagecodecs.ljpeg_decode,  # JPEG Lossless, Non-Hierarchical
    "1.2.840.10008.1.2.4.70": imagecodecs.ljpeg_decode,  # JPEG Lossless, First-Order Prediction
    "1.2.840.10008.1.2.4.80": imagecodecs.jpegls_decode,  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": imagecodecs.jpegls_decode,  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": imagecodecs.jpeg2k_decode,  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91": imagecodecs.jpeg2k_decode,  # JPEG 2000
    "1.2.840.10008.1.2.4.201": imagecodecs.jpeg2k_decode,  # HTJ2K (Lossless Only)
    "1.2.840.10008.1.2.4.202": imagecodecs.jpeg2k_decode,  # HTJ2K (Lossless RPCL)
    "1.2.840.10008.1.2.4.203": imagecodecs.jpeg2k_decode,  # HTJ2K
}
_NATIVE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})

# PS3.3 C.8.12.4.1.1 Image Type value 3 of VL Whole Slide Microscopy images.
ASSOCIATED_IMAGE_FLAVORS = frozenset({"LABEL", "OVERVIEW", "THUMBNAIL"})


def image_flavor(image_type: object) -> str:
    """Value 3 of Image Type (VOLUME, LABEL, OVERVIEW, THUMBNAIL), upper case."""
    if isinstance(image_type, str):
        values = image_type.split("\\")
    elif isinstance(image_type, Iterable):
        values = [str(v) for v in image_type]
    else:
        values = []
    return values[2].strip().upper() if len(values) > 2 else ""


def validate_dicom_instance(path: Path, limits: SlideLimits, deadline: Deadline) -> SlideInfo:
    header = read_dicom_header(path, limits)
    ds = header.dataset
    deadline.check()
    if str(ds.get("SOPClassUID", "")) != WSI_SOP_CLASS_UID:
        raise UnsupportedFormatError("DICOM file is not a VL Whole Slide Microscopy image")
    try:
        rows = int(ds.Rows)
        columns = int(ds.Columns)
        total_columns = int(ds.get("TotalPixelMatrixColumns", columns))
        total_rows = int(ds.get("TotalPixelMatrixRows", rows))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1))
        bits_allocated = int(ds.get("BitsAllocated", 8))
    except (AttributeError, TypeError, ValueError) as exc:
        raise CorruptSlideError("DICOM WSI without valid image dimensions") from exc
    for value in (rows, columns, total_rows, total_columns, frames, samples, bits_allocated):
        if value <= 0:
            raise CorruptSlideError("DICOM WSI with a non-positive dimension")
    if max(total_rows, total_columns) > limits.max_image_dimension_px:
        raise SlideBombError("image dimension exceeds MAX_IMAGE_DIMENSION_PX")
    if total_rows * total_columns > limits.max_decoded_pixels:
        raise SlideBombError("image pixel count exceeds MAX_DECODED_PIXELS")
    if max(rows, columns) > limits.max_tile_dimension_px:
        raise SlideBombError("frame exceeds MAX_TILE_DIMENSION_PX")
    if frames > limits.max_dicom_frame_count or frames > limits.max_tile_count:
        raise SlideBombError("frame count exceeds MAX_TILE_COUNT")
    frame_bytes = rows * columns * samples * ((bits_allocated + 7) // 8)
    if frame_bytes > limits.max_tile_decoded_bytes:
        raise SlideBombError("a decoded frame would exceed MAX_TILE_DECODED_BYTES")
    layout = header.pixel_data
    ts = str(ds.file_meta.TransferSyntaxUID)
    if layout.encapsulated and len(layout.fragments) < frames:
        raise CorruptSlideError("fewer pixel data fragments than frames")
    deadline.check()
    first = read_fragment(path, layout, 0)
    if ts in _NATIVE:
        if len(first) < frame_bytes * frames:
            raise CorruptSlideError("native pixel data shorter than the declared frames")
    else:
        decoder = _DECODERS.get(ts)
        if decoder is None:
            raise UnsupportedFormatError("DICOM transfer syntax we cannot decode")
        try:
            decoded = np.asarray(decoder(first))
        except Exception as exc:  # imagecodecs raises codec-specific errors
            raise CorruptSlideError("a frame does not decode") from exc
        if decoded.shape[0] != rows or decoded.shape[1] != columns:
            raise CorruptSlideError("a frame decodes to other dimensions than declared")
    flavor = image_flavor(ds.get("ImageType", []))
    if flavor in ASSOCIATED_IMAGE_FLAVORS:
        return SlideInfo(
            SlideFormat.DICOM_WSI,
            Container.DICOM,
            (),
            (AssociatedImageInfo(flavor.lower(), total_columns, total_rows),),
            layout.file_size_bytes,
        )
    level = LevelInfo(total_columns, total_rows, columns, rows, frames)
    return SlideInfo(SlideFormat.DICOM_WSI, Container.DICOM, (level,), (), layout.file_size_bytes)

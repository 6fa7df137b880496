"""DICOM WSI series (PS3.3 A.32.8 VL Whole Slide Microscopy Image): one level per VOLUME instance.

Headers are read with pydicom's parser up to the pixel data and :mod:`slidestream_wsi.dicom.
pixeldata` (one fragment per frame, PS3.5 A.4); frames are then read by offset, counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import imagecodecs
import numpy as np

from slidestream_wsi.detect import WSI_SOP_CLASS_UID
from slidestream_wsi.dicom.pixeldata import PixelDataLayout, read_dicom_header
from slidestream_wsi.errors import (
    CorruptSlideError,
    SlideBombError,
    SlideError,
    TruncatedSlideError,
    UnsupportedFormatError,
)
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.pyramid.counting import ByteCounter
from slidestream_wsi.pyramid.jpeg import parse_jpeg_frame
from slidestream_wsi.pyramid.level import (
    RGB_SAMPLES,
    Grey,
    Pixels,
    RawTile,
    SourceLevel,
    SourceSlide,
    TileCoding,
)
from slidestream_wsi.pyramid.spacing import dicom_objective_power, dicom_spacing

# PS3.5 §A.4 / PS3.6: the transfer syntaxes whose frames we can read.
_TS_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_TS_IMPLICIT_LE = "1.2.840.10008.1.2"
_TS_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
_TS_J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
_TS_J2K = "1.2.840.10008.1.2.4.91"
_DICOM_ITEM_HEADER_BYTES = 8
"""PS3.5 §7.5: an item tag and its length, in front of each fragment (and the offset table)."""
_LUMA_PHOTOMETRICS = frozenset({"YBR_FULL", "YBR_FULL_422"})
"""PS3.3 §C.7.6.3.1.2: photometric interpretations whose first component is the luminance."""


class _DicomLevel(SourceLevel):
    def __init__(
        self,
        ds: Any,
        fh: BinaryIO,
        layout: PixelDataLayout,
        transfer_syntax: str,
        frame_bytes: int,
        counter: ByteCounter,
        index: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(index=index, **kwargs)
        self._counter = counter
        self._ds = ds
        self._fh = fh
        self._layout = layout
        self._ts = transfer_syntax
        self._frame_bytes = frame_bytes

    def _read_coding(self) -> TileCoding:
        return _dicom_coding(self._ds, self._ts, self._layout, self._fh, self._counter)

    def read_raw(self, index: int) -> bytes:
        if self._layout.encapsulated:
            offset, length = self._layout.fragments[index]
        else:
            offset = self._layout.fragments[0][0] + index * self._frame_bytes
            length = self._frame_bytes
        if offset + length > self._layout.file_size_bytes:
            raise TruncatedSlideError("a frame points past the end of the file")
        data = self._counter.pread_exact(self._fh.fileno(), length, offset)
        if self._ts == _TS_JPEG_BASELINE and data.endswith(b"\xff\xd9\x00"):
            # PS3.5 §A.4: fragments are padded to an even length; a JPEG ends at its EOI.
            data = data[:-1]
        return data

    def decode(self, raw: RawTile | None, index: int) -> Pixels:
        if raw is None:
            return self.blank_tile()
        data = bytes(raw) if isinstance(raw, memoryview) else raw  # codecs take bytes
        return self._padded(decode_frame(data, self.coding.compression, self.coding, self))

    def decode_luma(self, raw: RawTile | None, index: int) -> Grey | None:
        coding = self.coding
        if raw is None or coding.compression != "jpeg":
            return None
        if coding.dicom_photometric not in _LUMA_PHOTOMETRICS:
            return None
        data = bytes(raw) if isinstance(raw, memoryview) else raw  # codecs take bytes
        try:
            grey = np.asarray(imagecodecs.jpeg8_decode(data, outcolorspace="GRAY"), np.uint8)
        except Exception as exc:  # codecs raise their own error types
            raise CorruptSlideError("a frame does not decode") from exc
        grey = grey[:, :, 0] if grey.ndim == 3 else grey
        if grey.shape != (self.tile_height, self.tile_width):
            raise CorruptSlideError("a frame decodes to another size than the tile size")
        return grey


def decode_frame(data: bytes, compression: str, coding: TileCoding, level: SourceLevel) -> Pixels:
    """Decode one self-contained frame (DICOM frame or merged TIFF tile) to RGB."""
    try:
        if compression == "jpeg":
            colorspace = "RGB" if coding.dicom_photometric == "RGB" else None
            array = imagecodecs.jpeg8_decode(data, colorspace=colorspace, outcolorspace="RGB")
        elif compression == "jpeg2000":
            array = imagecodecs.jpeg2k_decode(data)
        elif compression == "none":
            array = np.frombuffer(data, np.uint8)[
                : level.tile_height * level.tile_width * RGB_SAMPLES
            ].reshape(level.tile_height, level.tile_width, RGB_SAMPLES)
        else:
            raise UnsupportedFormatError("frame compression that cannot be decoded")
    except SlideError:
        raise
    except Exception as exc:
        raise CorruptSlideError("a frame does not decode") from exc
    return np.asarray(array, dtype=np.uint8)


def open_dicom(sources: Sequence[Path], limits: SlideLimits) -> SourceSlide:
    """Open the VOLUME instances of a DICOM WSI series (all of them, or only some levels'),
    largest first; LABEL, OVERVIEW and THUMBNAIL instances are no level."""
    counter = ByteCounter()
    instances = []
    for path in sources:
        header = read_dicom_header(path, limits)
        # The header parser reads the dataset and walks the fragment items in front of the
        # pixel data: count that as read (an upper bound of what it touched).
        counter.add(
            header.pixel_data.element_offset
            + _DICOM_ITEM_HEADER_BYTES * (len(header.pixel_data.fragments) + 2)
        )
        ds = header.dataset
        if str(ds.get("SOPClassUID", "")) != WSI_SOP_CLASS_UID:
            raise UnsupportedFormatError("DICOM file is not a VL Whole Slide Microscopy image")
        image_type = [str(v).upper() for v in ds.get("ImageType", [])]
        if len(image_type) < 3 or image_type[2] != "VOLUME":
            continue  # thumbnails are rebuilt; labels and overviews are not converted
        instances.append((path, header))
    if not instances:
        raise UnsupportedFormatError("DICOM series without a VOLUME instance")
    instances.sort(key=lambda item: -int(item[1].dataset.TotalPixelMatrixColumns))
    slide = SourceSlide(
        format="dicom_wsi",
        levels=[],
        mpp=None,
        objective_power=None,
        icc_profile=None,
        counter=counter,
        total_bytes=sum(path.stat().st_size for path in sources),
    )
    try:
        _add_levels(slide, instances, limits)
        first = instances[0][1].dataset
        slide.mpp = dicom_spacing(first)
        slide.objective_power = dicom_objective_power(first)
        optical = first.get("OpticalPathSequence")
        icc = optical[0].get("ICCProfile") if optical else None
        slide.icc_profile = bytes(icc) if icc else None
    except SlideError:
        slide.close()
        raise
    except (AttributeError, KeyError, ValueError, TypeError) as exc:
        slide.close()
        raise CorruptSlideError("DICOM WSI instance with missing or bad attributes") from exc
    return slide


def _add_levels(
    slide: SourceSlide, instances: Sequence[tuple[Path, Any]], limits: SlideLimits
) -> None:
    seen_sizes: set[tuple[int, int]] = set()
    for path, header in instances:
        ds = header.dataset
        size = (int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows))
        if size in seen_sizes:
            raise UnsupportedFormatError(
                "DICOM level split over several instances (concatenations, focal planes or "
                "optical paths) is not converted"
            )
        seen_sizes.add(size)
        fh = path.open("rb")
        slide.closers.append(fh.close)
        level = _dicom_level(ds, header.pixel_data, fh, slide.counter, len(slide.levels), limits)
        slide.levels.append(level)


def _dicom_level(
    ds: Any,
    layout: PixelDataLayout,
    fh: BinaryIO,
    counter: ByteCounter,
    index: int,
    limits: SlideLimits,
) -> SourceLevel:
    if str(ds.get("DimensionOrganizationType", "TILED_FULL")) != "TILED_FULL":
        raise UnsupportedFormatError("TILED_SPARSE DICOM is not converted")
    if (
        int(ds.get("TotalPixelMatrixFocalPlanes", 1)) != 1
        or int(ds.get("NumberOfOpticalPaths", 1)) != 1
    ):
        raise UnsupportedFormatError("DICOM with several focal planes or optical paths")
    if int(ds.SamplesPerPixel) != RGB_SAMPLES or int(ds.BitsAllocated) != 8:
        raise UnsupportedFormatError("only 8-bit RGB DICOM slides are converted")
    width, height = int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows)
    tile_w, tile_h = int(ds.Columns), int(ds.Rows)
    if min(width, height, tile_w, tile_h) <= 0:
        raise CorruptSlideError("a level or its tiles have no pixels")
    if max(width, height) > limits.max_image_dimension_px:
        raise SlideBombError("level exceeds MAX_IMAGE_DIMENSION_PX")
    if max(tile_w, tile_h) > limits.max_tile_dimension_px:
        raise SlideBombError("frame exceeds MAX_TILE_DIMENSION_PX")
    frames = int(ds.get("NumberOfFrames", 1))
    if frames != math.ceil(width / tile_w) * math.ceil(height / tile_h):
        raise CorruptSlideError("TILED_FULL frame count does not match the tile grid")
    ts = str(ds.file_meta.TransferSyntaxUID)
    frame_bytes = tile_w * tile_h * RGB_SAMPLES
    _check_transfer_syntax(ds, ts)
    if ts in (_TS_EXPLICIT_LE, _TS_IMPLICIT_LE) and (
        layout.encapsulated or layout.fragments[0][1] < frames * frame_bytes
    ):
        raise TruncatedSlideError("native pixel data shorter than its frames")
    if layout.encapsulated and len(layout.fragments) != frames:
        raise UnsupportedFormatError("DICOM frames split over several fragments")
    return _DicomLevel(
        ds,
        fh,
        layout,
        ts,
        frame_bytes,
        counter,
        index,
        width=width,
        height=height,
        tile_width=tile_w,
        tile_height=tile_h,
        tiled=True,
        tile_count=frames,
        stored_bytes=sum(length for _, length in layout.fragments),
        declared_mpp=dicom_spacing(ds),
    )


def _check_transfer_syntax(ds: Any, ts: str) -> None:
    """Refuse at open what :func:`_dicom_coding` (read on first use) could not describe."""
    native = ts in (_TS_EXPLICIT_LE, _TS_IMPLICIT_LE)
    if ts not in (_TS_JPEG_BASELINE, _TS_J2K, _TS_J2K_LOSSLESS) and not (
        native and str(ds.PhotometricInterpretation) == "RGB"
    ):
        raise UnsupportedFormatError("DICOM transfer syntax that is not converted")
    if native and int(ds.get("PlanarConfiguration", 0)) != 0:
        raise UnsupportedFormatError("planar native DICOM pixel data is not converted")


def _dicom_coding(
    ds: Any, ts: str, layout: PixelDataLayout, fh: BinaryIO, counter: ByteCounter
) -> TileCoding:
    photometric = str(ds.PhotometricInterpretation)
    if ts == _TS_JPEG_BASELINE:
        frame = None
        if layout.fragments:
            offset, length = layout.fragments[0]
            frame = parse_jpeg_frame(counter.pread(fh.fileno(), length, offset))
        return TileCoding(
            "jpeg",
            "rgb" if photometric == "RGB" else "ycbcr",
            jpeg_frame=frame.sampling[0] if frame else None,
            dicom_photometric=photometric if frame and frame.baseline else None,
        )
    if ts in (_TS_J2K, _TS_J2K_LOSSLESS):
        return TileCoding("jpeg2000", "rgb", dicom_photometric=photometric)
    return TileCoding("none", "rgb", dicom_photometric="RGB")  # _check_transfer_syntax

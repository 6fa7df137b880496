"""Where the Pixel Data element and its frames lie in a DICOM file (PS3.5 §7.5, §A.4).

De-identification rewrites the dataset in front of the pixel data and copies the Pixel Data
element byte for byte, so it needs the element's exact extent; validation and the tests need
the frames (encapsulated fragments) one by one.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import FileDataset

from slidestream_wsi.errors import CorruptSlideError, SlideBombError, TruncatedSlideError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits

PIXEL_DATA_TAG = (0x7FE0, 0x0010)
_ITEM_TAG = (0xFFFE, 0xE000)
_SEQUENCE_DELIMITER_TAG = (0xFFFE, 0xE0DD)
_UNDEFINED_LENGTH = 0xFFFFFFFF
# PS3.5 §7.1.2: VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length.
_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT"})


@dataclass(frozen=True, slots=True)
class PixelDataLayout:
    element_offset: int
    """File offset of the Pixel Data element's tag."""
    element_end: int
    """File offset just past the element (past the sequence delimiter when encapsulated)."""
    encapsulated: bool
    fragments: tuple[tuple[int, int], ...]
    """(offset, length) of each fragment after the Basic Offset Table, or of the native value."""
    file_size_bytes: int


@dataclass(frozen=True, slots=True)
class DicomHeader:
    dataset: FileDataset
    pixel_data: PixelDataLayout


def read_dicom_header(path: Path, limits: SlideLimits = DEFAULT_LIMITS) -> DicomHeader:
    """Parse the dataset up to the Pixel Data element and locate that element's frames."""
    from pydicom.errors import InvalidDicomError

    with path.open("rb") as fh:
        fh.seek(0, 2)
        file_size = fh.tell()
        fh.seek(0)
        try:
            dataset = pydicom.dcmread(fh, stop_before_pixels=True)
        except (InvalidDicomError, ValueError, EOFError, struct.error, OSError) as exc:
            raise CorruptSlideError("unreadable DICOM header") from exc
        element_offset = fh.tell()
        if element_offset > limits.max_dicom_header_bytes:
            raise SlideBombError("DICOM header exceeds MAX_DICOM_HEADER_BYTES")
        transfer_syntax = dataset.file_meta.get("TransferSyntaxUID")
        if transfer_syntax is None:
            raise CorruptSlideError("DICOM file without a transfer syntax")
        ts = pydicom.uid.UID(str(transfer_syntax))
        if not ts.is_little_endian or ts.is_deflated:
            raise CorruptSlideError("DICOM transfer syntax is big endian or deflated")
        layout = _locate(fh, element_offset, file_size, ts.is_implicit_VR, limits)
    return DicomHeader(dataset, layout)


def _read_exact(fh: BinaryIO, nbytes: int) -> bytes:
    data = fh.read(nbytes)
    if len(data) != nbytes:
        raise TruncatedSlideError("DICOM pixel data runs past the end of the file")
    return data


def _locate(
    fh: BinaryIO, element_offset: int, file_size: int, implicit_vr: bool, limits: SlideLimits
) -> PixelDataLayout:
    fh.seek(element_offset)
    head = fh.read(8)
    if len(head) < 8:
        raise TruncatedSlideError("DICOM file has no pixel data")
    group, element = struct.unpack("<HH", head[:4])
    if (group, element) != PIXEL_DATA_TAG:
        raise CorruptSlideError("DICOM dataset does not end in (7FE0,0010) Pixel Data")
    if implicit_vr:
        (length,) = struct.unpack("<I", head[4:8])
        value_offset = element_offset + 8
    else:
        vr = head[4:6]
        if vr not in _LONG_VRS:
            raise CorruptSlideError("Pixel Data with an unexpected VR")
        (length,) = struct.unpack("<I", _read_exact(fh, 4))
        value_offset = element_offset + 12
    if length != _UNDEFINED_LENGTH:
        end = value_offset + length
        if end > file_size:
            raise TruncatedSlideError("DICOM pixel data runs past the end of the file")
        return PixelDataLayout(element_offset, end, False, ((value_offset, length),), file_size)
    # PS3.5 §A.4: encapsulated: a Basic Offset Table item, fragment items, a delimiter.
    fragments: list[tuple[int, int]] = []
    position = value_offset
    first = True
    # One 8-byte pread per item header: a seek and read on the buffered file would fill its
    # whole buffer (8 KiB) for each of tens of thousands of frames.
    fd = fh.fileno()
    while True:
        item = os.pread(fd, 8, position)
        if len(item) != 8:
            raise TruncatedSlideError("DICOM pixel data runs past the end of the file")
        item_group, item_element, item_length = struct.unpack("<HHI", item)
        if (item_group, item_element) == _SEQUENCE_DELIMITER_TAG:
            position += 8
            break
        if (item_group, item_element) != _ITEM_TAG or item_length == _UNDEFINED_LENGTH:
            raise CorruptSlideError("malformed encapsulated pixel data")
        start = position + 8
        if start + item_length > file_size:
            raise TruncatedSlideError("DICOM fragment runs past the end of the file")
        if not first:
            fragments.append((start, item_length))
            if len(fragments) > limits.max_dicom_frame_count:
                raise SlideBombError("DICOM fragments exceed MAX_DICOM_FRAME_COUNT")
        first = False
        position = start + item_length
    return PixelDataLayout(element_offset, position, True, tuple(fragments), file_size)


def read_fragment(path: Path, layout: PixelDataLayout, index: int) -> bytes:
    """The bytes of one fragment (one frame, in WSI files that use one fragment per frame)."""
    offset, length = layout.fragments[index]
    with path.open("rb") as fh:
        fh.seek(offset)
        return _read_exact(fh, length)

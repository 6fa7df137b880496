"""Bounded opening: check declared sizes against the limits, then decode one tile per level.

A slide that opens is not yet a slide that reads (OpenSlide's ``unreadable.svs`` opens but its
first tile does not decode), so validation decodes the first tile of every level, and checks
that every tile of every level lies inside the file. Tiles are read one at a time through
tifffile's ``dataoffsets``/``databytecounts`` and decoded by tifffile's per-segment decoder
(imagecodecs underneath); no level is ever decoded whole.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile

from slidestream_wsi.detect import Container, DetectedFormat, SlideFormat, detect_format
from slidestream_wsi.errors import (
    CorruptSlideError,
    SlideBombError,
    SlideError,
    TruncatedSlideError,
    UnsupportedFormatError,
)
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.source import SourceLike, as_source
from slidestream_wsi.tiff.layout import (
    ClassifiedIfd,
    PageRole,
    classify_ifds,
    tifffile_page_at,
)
from slidestream_wsi.tiff.structure import (
    TAG_ROWS_PER_STRIP,
    TAG_STRIP_BYTE_COUNTS,
    TAG_STRIP_OFFSETS,
    TAG_TILE_BYTE_COUNTS,
    TAG_TILE_LENGTH,
    TAG_TILE_OFFSETS,
    TAG_TILE_WIDTH,
    Ifd,
    TiffStructure,
    open_tifffile,
    walk_tiff,
)

_JPEG_COMPRESSIONS = frozenset({6, 7, 33007})  # TIFF 6.0 old JPEG, TN2 JPEG, ALT_JPEG
# JPEG (ITU T.81 Annex B) start-of-frame markers; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class Deadline:
    """The wall-clock budget of one open (``OPEN_TIME_BUDGET_S``)."""

    def __init__(self, budget_s: float) -> None:
        self._budget_s = budget_s
        self._end_s = time.monotonic() + budget_s

    def check(self) -> None:
        if time.monotonic() > self._end_s:
            raise SlideBombError("opening the slide exceeded OPEN_TIME_BUDGET_S")


@dataclass(frozen=True, slots=True)
class LevelInfo:
    width_px: int
    height_px: int
    tile_width_px: int
    tile_height_px: int
    tile_count: int


@dataclass(frozen=True, slots=True)
class AssociatedImageInfo:
    role: str
    width_px: int
    height_px: int


@dataclass(frozen=True, slots=True)
class SlideInfo:
    """What a validated slide is (no metadata values: they may be patient data)."""

    format: SlideFormat
    container: Container
    levels: tuple[LevelInfo, ...]
    associated_images: tuple[AssociatedImageInfo, ...]
    file_size_bytes: int

    @property
    def width_px(self) -> int:
        return self.levels[0].width_px

    @property
    def height_px(self) -> int:
        return self.levels[0].height_px


def validate_slide(
    path: SourceLike,
    limits: SlideLimits = DEFAULT_LIMITS,
    detected: DetectedFormat | None = None,
) -> SlideInfo:
    """Detect, bound and test-decode a slide; raise a :class:`SlideError` subclass if it is bad.

    DICOM inputs are validated by :func:`slidestream_wsi.dicom.validate_dicom_instance`; zip
    inputs must be extracted first (see :mod:`slidestream_wsi.archive`). TIFF-based slides may
    come from any :class:`~slidestream_wsi.source.SlideSource`.
    """
    deadline = Deadline(limits.open_time_budget_s)
    detected = detected or detect_format(path, limits)
    if detected.container is Container.DICOM:
        from slidestream_wsi.dicom.validate import validate_dicom_instance

        if not isinstance(path, Path):
            raise ValueError("DICOM instances are validated from a file")
        return validate_dicom_instance(path, limits, deadline)
    if detected.container is Container.ZIP:
        raise UnsupportedFormatError("validate the extracted members of an archive one by one")
    return validate_tiff(path, detected, limits, deadline)


def validate_tiff(
    path: SourceLike, detected: DetectedFormat, limits: SlideLimits, deadline: Deadline
) -> SlideInfo:
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    with as_source(path).open() as fh:
        structure = walk_tiff(fh, limits)
        deadline.check()
        _check_declared_sizes(fh, structure, limits)
        deadline.check()
        with ExitStack() as stack:
            try:
                tif = stack.enter_context(open_tifffile(path))
            except Exception as exc:
                raise CorruptSlideError("tifffile cannot parse the TIFF") from exc
            classified = classify_ifds(fh, structure, detected.format, limits, tif)
            levels: list[LevelInfo] = []
            associated: list[AssociatedImageInfo] = []
            for item in classified:
                deadline.check()
                if item.role is PageRole.LEVEL:
                    levels.append(_validate_level(fh, structure, tif, item, limits))
                else:
                    associated.append(
                        AssociatedImageInfo(str(item.role), item.width_px, item.height_px)
                    )
    return SlideInfo(
        detected.format,
        detected.container,
        tuple(levels),
        tuple(associated),
        structure.file_size_bytes,
    )


def _check_declared_sizes(fh: BinaryIO, structure: TiffStructure, limits: SlideLimits) -> None:
    """Refuse bombs from the declared numbers alone, before any library allocates for them."""
    total_segments = 0
    for ifd in structure.all_ifds():
        width = structure.read_int(fh, ifd, 256, limits) or 0
        height = structure.read_int(fh, ifd, 257, limits) or 0
        if width <= 0 or height <= 0:
            raise CorruptSlideError("IFD with a zero image dimension")
        if width > limits.max_image_dimension_px or height > limits.max_image_dimension_px:
            raise SlideBombError("image dimension exceeds MAX_IMAGE_DIMENSION_PX")
        if width * height > limits.max_decoded_pixels:
            raise SlideBombError("image pixel count exceeds MAX_DECODED_PIXELS")
        segment_w, segment_h, expected = _segment_grid(fh, structure, ifd, width, height, limits)
        oversized = max(segment_w, segment_h) > limits.max_tile_dimension_px
        if oversized and (expected > 1 or not _is_ndpi_jpeg(ifd)):
            raise SlideBombError("tile or strip exceeds MAX_TILE_DIMENSION_PX")
        total_segments += expected
        if total_segments > limits.max_tile_count:
            raise SlideBombError("tile count exceeds MAX_TILE_COUNT")
        offsets_tag = TAG_TILE_OFFSETS if TAG_TILE_WIDTH in ifd.entries else TAG_STRIP_OFFSETS
        counts_tag = (
            TAG_TILE_BYTE_COUNTS if offsets_tag == TAG_TILE_OFFSETS else TAG_STRIP_BYTE_COUNTS
        )
        offsets_entry = ifd.entries.get(offsets_tag)
        counts_entry = ifd.entries.get(counts_tag)
        if offsets_entry is None or counts_entry is None:
            raise CorruptSlideError("IFD without data offsets or byte counts")
        samples_planes = max(1, offsets_entry.count // max(expected, 1))
        if offsets_entry.count != counts_entry.count or offsets_entry.count not in (
            expected,
            expected * samples_planes,
        ):
            raise CorruptSlideError("tile offsets do not match the declared image geometry")
        offsets = structure.read_integers(fh, offsets_entry, limits)
        counts = structure.read_integers(fh, counts_entry, limits)
        if (counts < 0).any() or (offsets < 0).any():
            raise CorruptSlideError("negative tile offset or byte count")
        ends = offsets + counts
        if int(ends.max(initial=0)) > structure.file_size_bytes:
            raise TruncatedSlideError("tile data runs past the end of the file")


def _is_ndpi_jpeg(ifd: Ifd) -> bool:
    # NDPI levels are one JPEG strip; tifffile splits it into tiles at its restart markers
    # (McuStarts, tag 65426), so the strip's size is not what gets decoded.
    return 65426 in ifd.entries


def _segment_grid(
    fh: BinaryIO, structure: TiffStructure, ifd: Ifd, width: int, height: int, limits: SlideLimits
) -> tuple[int, int, int]:
    tile_w = structure.read_int(fh, ifd, TAG_TILE_WIDTH, limits)
    tile_h = structure.read_int(fh, ifd, TAG_TILE_LENGTH, limits)
    if tile_w is not None and tile_h is not None:
        if tile_w <= 0 or tile_h <= 0:
            raise CorruptSlideError("zero tile dimension")
        return tile_w, tile_h, math.ceil(width / tile_w) * math.ceil(height / tile_h)
    rows = structure.read_int(fh, ifd, TAG_ROWS_PER_STRIP, limits) or height
    rows = max(1, min(rows, height))
    return width, rows, math.ceil(height / rows)


def _validate_level(
    fh: BinaryIO,
    structure: TiffStructure,
    tif: tifffile.TiffFile,
    item: ClassifiedIfd,
    limits: SlideLimits,
) -> LevelInfo:
    try:
        page = tifffile_page_at(tif, item.ifd)
    except SlideError:
        raise
    except Exception as exc:
        raise CorruptSlideError("a level's IFD does not parse") from exc
    # A tile is its stored size even past the image's edge (TIFF 6.0 §15: edge tiles are
    # padded, and decode whole); a strip is at most the image's height. The reader says the same.
    height = int(page.imagelength)
    tile_w = int(page.tilewidth) if page.is_tiled else int(page.imagewidth)
    tile_h = (
        int(page.tilelength) if page.is_tiled else min(int(page.rowsperstrip or height), height)
    )
    samples = int(page.samplesperpixel)
    itemsize = int(np.dtype(page.dtype).itemsize) if page.dtype is not None else 1
    if tile_w * tile_h * samples * itemsize > limits.max_tile_decoded_bytes:
        raise SlideBombError("a decoded tile would exceed MAX_TILE_DECODED_BYTES")
    if tile_w > limits.max_tile_dimension_px or tile_h > limits.max_tile_dimension_px:
        raise SlideBombError("tile exceeds MAX_TILE_DIMENSION_PX")
    offsets = page.dataoffsets
    counts = page.databytecounts
    if not offsets:
        raise CorruptSlideError("level without tiles")
    if max(o + c for o, c in zip(offsets, counts, strict=True)) > structure.file_size_bytes:
        raise TruncatedSlideError("tile data runs past the end of the file")
    index = next((i for i, c in enumerate(counts) if c > 0), None)
    if index is None:
        raise CorruptSlideError("level whose tiles are all empty")
    decode_one_tile(fh, page, index, limits)
    return LevelInfo(int(page.imagewidth), int(page.imagelength), tile_w, tile_h, len(offsets))


def decode_one_tile(
    fh: BinaryIO, page: tifffile.TiffPage, index: int, limits: SlideLimits
) -> np.ndarray[tuple[int, ...], np.dtype[np.generic]]:
    """Decode tile (or strip) ``index`` of ``page`` alone; raise typed errors on failure."""
    offset = int(page.dataoffsets[index])
    nbytes = int(page.databytecounts[index])
    if nbytes > limits.max_tile_decoded_bytes:
        raise SlideBombError("an encoded tile exceeds MAX_TILE_DECODED_BYTES")
    fh.seek(offset)
    data = fh.read(nbytes)
    if len(data) != nbytes:
        raise TruncatedSlideError("tile data runs past the end of the file")
    jpegheader = getattr(page, "jpegheader", None)
    if int(page.compression) in _JPEG_COMPRESSIONS and not jpegheader:
        _check_jpeg_frame_size(data, page, limits)
    try:
        segment, _indices, _shape = page.decode(
            data, index, jpegtables=page.jpegtables, jpegheader=jpegheader
        )
    except Exception as exc:  # imagecodecs raises codec-specific errors
        raise CorruptSlideError("a tile does not decode") from exc
    if segment is None:
        raise CorruptSlideError("a tile decodes to nothing")
    return np.asarray(segment)


def _check_jpeg_frame_size(data: bytes, page: tifffile.TiffPage, limits: SlideLimits) -> None:
    """Refuse a JPEG tile whose frame header declares more pixels than the tile holds."""
    position = 2 if data[:2] == b"\xff\xd8" else 0
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF_MARKERS:
            if position + 9 > len(data):
                return
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            max_px = limits.max_tile_dimension_px
            if width > max_px or height > max_px:
                raise SlideBombError("a JPEG tile declares a frame over MAX_TILE_DIMENSION_PX")
            return
        if marker == 0xDA:  # start of scan: no frame header before it
            return
        position += 2 + length

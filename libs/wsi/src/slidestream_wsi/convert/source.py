"""Read the pyramid of a de-identified slide tile by tile: raw bytes for the lossless path, a
decoder for the tiles that must be re-encoded or downsampled, and the metadata the outputs carry.

TIFF layouts (SVS, generic tiled TIFF, OME-TIFF, NDPI, Philips) are read through tifffile's
series (``series[0].levels`` is the pyramid for every vendor tifffile knows); raw tiles are read
from the offsets and byte counts of each level's page, never through a decoder. NDPI levels are
one JPEG stripe with restart markers; tifffile presents them as stripes of restart intervals,
which are re-encoded, not copied. DICOM series (several files) are read with pydicom's header
parser and :mod:`slidestream_wsi.dicom.pixeldata` (one fragment per frame).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_wsi.convert.jpeg import (
    J2K_SOC,
    SOI,
    is_jp2_file,
    merge_tables,
    parse_j2k_codestream,
    parse_jpeg_frame,
    with_adobe_rgb_marker,
)
from slidestream_wsi.convert.model import Compression
from slidestream_wsi.detect import DICOM_PREAMBLE_BYTES, WSI_SOP_CLASS_UID, is_dicom_head
from slidestream_wsi.dicom.pixeldata import PixelDataLayout, read_dicom_header
from slidestream_wsi.errors import (
    CorruptSlideError,
    SlideBombError,
    SlideError,
    TruncatedSlideError,
    UnsupportedFormatError,
)
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits

RawTile = bytes | memoryview
"""Stored tile bytes, or a view of them in a read buffer."""
Pixels = npt.NDArray[np.uint8]
"""A decoded tile or band: (height, width, 3) RGB, uint8."""

RGB_SAMPLES = 3
RAW_RUN_BYTES = 8 * 1024 * 1024
"""Largest read of back-to-back stored tiles: one syscall per run instead of one per tile, with
memory bounded by a few runs."""
RAW_ROW_BUFFER_MAX_BYTES = 256 * 1024 * 1024
"""Largest run of tiles read into a level's reused buffer; a larger one is read tile by tile."""
COPY_RUN_BYTES = 256 * 1024
"""Stored bytes the copy pass reads, then writes, at a time. A run this size is still in the
core's L2 cache when it is written out; a whole tile row (megabytes) is not, and the kernel's two
copies then cost twice as much (1.8 GiB of tiles with their DICOM item headers: 2.4-2.6 s of
system time in whole-row runs, 1.1-1.3 s in 256 KiB runs, on the benchmark machine)."""
BACKGROUND_RGB = 255
"""Colour of tiles a sparse source omits and of the padding past a level's edge: white, the
colour of an empty glass slide in brightfield."""

# TIFF 6.0 §3 / Adobe TIFF tech notes: Compression tag values.
_TIFF_COMPRESSION_NAMES: dict[int, Compression] = {
    1: "none",
    5: "lzw",
    7: "jpeg",
    8: "deflate",
    32946: "deflate",
    33003: "jpeg2000",
    33005: "jpeg2000",
    34712: "jpeg2000",
    50001: "webp",
    50002: "jpegxl",
}
_TIFF_PHOTOMETRIC_RGB = 2
_TIFF_PHOTOMETRIC_YCBCR = 6
# Aperio's JPEG 2000 with YCbCr components and no codestream MCT (33003): DICOM has no
# photometric interpretation for that, so it is re-encoded.
_TIFF_APERIO_J2K_YCBCR = 33003

# PS3.5 §A.4 / PS3.6: the transfer syntaxes whose frames we can read.
_TS_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_TS_IMPLICIT_LE = "1.2.840.10008.1.2"
_TS_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
_TS_J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
_TS_J2K = "1.2.840.10008.1.2.4.91"


@dataclass(frozen=True, slots=True)
class TileCoding:
    """How the stored tiles of a level are encoded."""

    compression: Compression | str
    """One of the report's names, or ``other:<code>`` for codecs we only decode."""
    photometric: str
    """``rgb`` or ``ycbcr`` (of the decoded components before any colour transform)."""
    jpeg_tables: bytes | None = None
    jpeg_needs_adobe_rgb: bool = False
    """RGB components in a JPEG without a JFIF/Adobe marker (Aperio): add APP14 on copy."""
    jpeg_frame: tuple[int, int] | None = None
    """(h, v) luma sampling factors of the JPEG tiles, (1, 1) when not subsampled."""
    dicom_photometric: str | None = None
    """Photometric Interpretation of the copied frames in DICOM, None when not carryable."""
    j2k_reversible: bool = False


class SourceLevel:
    """One pyramid level of the source: its geometry, raw tiles and a decoder."""

    def __init__(
        self,
        *,
        index: int,
        width: int,
        height: int,
        tile_width: int,
        tile_height: int,
        tiled: bool,
        coding: TileCoding,
        tile_count: int,
        stored_bytes: int,
        has_missing_tiles: bool = False,
    ) -> None:
        self.index = index
        self.stored_bytes = stored_bytes
        """Sum of the stored tile sizes (bounds the copied output's size)."""
        self.has_missing_tiles = has_missing_tiles
        self.width = width
        self.height = height
        self.tile_width = tile_width
        self.tile_height = tile_height
        self.tiled = tiled
        self.coding = coding
        self.tile_count = tile_count

    @property
    def columns(self) -> int:
        return math.ceil(self.width / self.tile_width)

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.tile_height)

    def read_raw(self, index: int) -> bytes | None:
        """The stored bytes of tile ``index`` (row-major), None when the source omits it."""
        raise NotImplementedError

    def read_raws(self, start: int, stop: int) -> list[bytes | None]:
        """:meth:`read_raw` of tiles ``start`` to ``stop - 1`` (a tile row, typically)."""
        return [self.read_raw(index) for index in range(start, stop)]

    def read_raw_views(self, start: int, stop: int) -> list[memoryview | None]:
        """:meth:`read_raws` as views, which may point into a buffer that the next call
        overwrites: for a caller that is done with a run before it reads the next (the copy
        pass writes each run out at once, and saves the allocations and copies of bytes)."""
        return [None if raw is None else memoryview(raw) for raw in self.read_raws(start, stop)]

    def copy_runs(self) -> Iterator[tuple[int, int]]:
        """First and past-the-last tile index of each run the copy pass reads at a time, in
        order, none across a tile row: whole rows unless the stored sizes are known."""
        for row in range(self.rows):
            first = row * self.columns
            yield first, min(first + self.columns, self.tile_count)

    def decode(self, raw: RawTile | None, index: int) -> Pixels:
        """Decoded tile ``index``, padded to (tile_height, tile_width, 3)."""
        raise NotImplementedError

    def copy_bytes(self, raw: RawTile) -> RawTile:
        """The stored tile as a self-contained frame (tables merged, colour space signalled).

        The same bytes as ``with_adobe_rgb_marker(merge_tables(tables, raw))``, built with one
        copy of the tile from a head computed once per level.
        """
        if self.coding.compression != "jpeg":
            return raw
        head = self._jpeg_copy_head
        if head is None:
            return raw
        if raw[: len(SOI)] != SOI:
            raise CorruptSlideError("JPEG tile without SOI")
        return b"".join((head, memoryview(raw)[len(SOI) :]))

    @functools.cached_property
    def _jpeg_copy_head(self) -> bytes | None:
        """What replaces a stored tile's SOI, None when the tile is used as stored: SOI, the
        Adobe marker when needed, then the shared tables minus their SOI and EOI."""
        tables = self.coding.jpeg_tables
        if not tables and not self.coding.jpeg_needs_adobe_rgb:
            return None
        head = SOI
        if self.coding.jpeg_needs_adobe_rgb:
            head = with_adobe_rgb_marker(head)
        if tables:
            head += merge_tables(tables, SOI)[len(SOI) :]
        return head

    def _padded(self, array: Pixels) -> Pixels:
        if array.shape == (self.tile_height, self.tile_width, RGB_SAMPLES):
            return array
        tile = np.full((self.tile_height, self.tile_width, RGB_SAMPLES), BACKGROUND_RGB, np.uint8)
        height = min(array.shape[0], self.tile_height)
        width = min(array.shape[1], self.tile_width)
        tile[:height, :width] = array[:height, :width]
        return tile

    def blank_tile(self) -> Pixels:
        return np.full((self.tile_height, self.tile_width, RGB_SAMPLES), BACKGROUND_RGB, np.uint8)


SOURCE_THUMBNAIL_MAX_PX = 4096
"""Largest width or height of a source's own thumbnail image that is decoded for the DICOM
thumbnail instance (scanners store a few hundred pixels; anything larger is not a thumbnail)."""


@dataclass(frozen=True, slots=True)
class SourceThumbnail:
    """The whole-slide thumbnail the scanner stored beside the pyramid (an Aperio SVS's second
    image), which de-identification keeps: no label, no slide edge."""

    width: int
    height: int
    read: Callable[[], Pixels]
    """Decodes it: (height, width, 3) RGB."""


@dataclass
class SourceSlide:
    """An opened source: its levels (largest first) and what the outputs carry over."""

    format: str
    levels: list[SourceLevel]
    mpp: tuple[float, float] | None
    """Level-0 microns per pixel (x, y)."""
    objective_power: float | None
    icc_profile: bytes | None
    closers: list[Callable[[], None]] = field(default_factory=list)
    thumbnail: SourceThumbnail | None = None

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def open_source(sources: Sequence[Path], limits: SlideLimits = DEFAULT_LIMITS) -> SourceSlide:
    """Open a single TIFF-family file or the files of a DICOM series."""
    if not sources:
        raise UnsupportedFormatError("no source file")
    heads = []
    for path in sources:
        with path.open("rb") as fh:
            heads.append(fh.read(DICOM_PREAMBLE_BYTES + 4))
    if all(is_dicom_head(head) for head in heads):
        return _open_dicom(sources, limits)
    if len(sources) != 1:
        raise UnsupportedFormatError("several source files that are not a DICOM series")
    if heads[0][:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        raise UnsupportedFormatError("source is neither TIFF nor DICOM")
    return _open_tiff(sources[0], limits)


# -- TIFF -----------------------------------------------------------------------------------


class _TiffLevel(SourceLevel):
    def __init__(self, page: tifffile.TiffPage, fh: BinaryIO, index: int, **kwargs: Any) -> None:
        super().__init__(index=index, **kwargs)
        self._page = page
        self._fh = fh
        self._offsets: tuple[int, ...] = tuple(page.dataoffsets)
        self._counts: tuple[int, ...] = tuple(page.databytecounts)
        self._file_size = fh.seek(0, 2)
        self._run_buffer: bytearray | None = None

    def read_raw(self, index: int) -> bytes | None:
        offset, count = self._offsets[index], self._counts[index]
        if count == 0 or offset == 0:
            return None
        if offset + count > self._file_size:
            raise TruncatedSlideError("a tile points past the end of the file")
        # pread: no shared file position, so the copying and the generating threads can both
        # read the level.
        return os.pread(self._fh.fileno(), count, offset)

    def read_raws(self, start: int, stop: int) -> list[bytes | None]:
        """Tiles stored back to back (as scanners and tifffile write a level) are read with one
        read per run of up to :data:`RAW_RUN_BYTES`, not one per tile."""
        offsets, counts = self._offsets, self._counts
        tiles: list[bytes | None] = []
        index = start
        while index < stop:
            offset, count = offsets[index], counts[index]
            end = offset + count
            last = index + 1
            while (
                last < stop
                and offsets[last] == end
                and counts[last]
                and end - offset < RAW_RUN_BYTES
            ):
                end += counts[last]
                last += 1
            if count == 0 or offset == 0 or last == index + 1 or end > self._file_size:
                # Missing, isolated or truncated: the per-tile read decides (and raises).
                tiles.append(self.read_raw(index))
                index += 1
                continue
            run = os.pread(self._fh.fileno(), end - offset, offset)
            if len(run) != end - offset:
                raise TruncatedSlideError("a tile points past the end of the file")
            for tile in range(index, last):
                at = offsets[tile] - offset
                tiles.append(run[at : at + counts[tile]])
            index = last
        return tiles

    def read_raw_views(self, start: int, stop: int) -> list[memoryview | None]:
        """Back-to-back tiles are read (``preadv``) into one buffer kept by the level; anything
        else falls back to per-tile reads."""
        offsets, counts = self._offsets[start:stop], self._counts[start:stop]
        if not offsets:
            return []
        first, end = offsets[0], offsets[-1] + counts[-1]
        contiguous = all(count and offset for offset, count in zip(offsets, counts, strict=True))
        contiguous = contiguous and all(
            offsets[i + 1] == offsets[i] + counts[i] for i in range(len(offsets) - 1)
        )
        if not contiguous or end > self._file_size or end - first > RAW_ROW_BUFFER_MAX_BYTES:
            return super().read_raw_views(start, stop)
        if self._run_buffer is None or len(self._run_buffer) < end - first:
            self._run_buffer = bytearray(max(end - first, 2 * COPY_RUN_BYTES))
        view = memoryview(self._run_buffer)[: end - first]
        if os.preadv(self._fh.fileno(), [view], first) != end - first:
            raise TruncatedSlideError("a tile points past the end of the file")
        return [
            view[offset - first : offset - first + count]
            for offset, count in zip(offsets, counts, strict=True)
        ]

    def copy_runs(self) -> Iterator[tuple[int, int]]:
        """Each row cut into runs of about :data:`COPY_RUN_BYTES` (one tile at least)."""
        counts = self._counts
        for first, stop in super().copy_runs():
            start, size = first, 0
            for index in range(first, stop):
                if size and size + counts[index] > COPY_RUN_BYTES:
                    yield start, index
                    start, size = index, 0
                size += counts[index]
            yield start, stop

    def decode(self, raw: RawTile | None, index: int) -> Pixels:
        if raw is None:
            return self.blank_tile()
        raw = bytes(raw) if isinstance(raw, memoryview) else raw  # codecs take bytes
        page = self._page
        try:
            decoded, _, _ = page.decode(
                raw, index, jpegtables=page.jpegtables, jpegheader=page.jpegheader, _fullsize=True
            )
        except Exception as exc:  # codecs raise their own error types
            raise CorruptSlideError("a tile does not decode") from exc
        if decoded is None:
            return self.blank_tile()
        array = np.asarray(decoded).reshape(decoded.shape[-3:])
        return self._padded(array.astype(np.uint8, copy=False))


def _tiff_coding(page: tifffile.TiffPage, fh: BinaryIO) -> TileCoding:
    code = int(page.compression)
    name: Compression | str = _TIFF_COMPRESSION_NAMES.get(code, f"other:{code}")
    photometric = "ycbcr" if page.photometric == _TIFF_PHOTOMETRIC_YCBCR else "rgb"
    if name == "jpeg":
        return _tiff_jpeg_coding(page, fh, photometric)
    if name == "jpeg2000":
        return _tiff_j2k_coding(page, fh, code, photometric)
    if name == "none" and page.photometric == _TIFF_PHOTOMETRIC_RGB:
        return TileCoding("none", "rgb", dicom_photometric="RGB")
    return TileCoding(name, photometric)


def _first_tile(page: tifffile.TiffPage, fh: BinaryIO) -> bytes | None:
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
        if count and offset:
            fh.seek(offset)
            return fh.read(count)
    return None


def _tiff_jpeg_coding(page: tifffile.TiffPage, fh: BinaryIO, photometric: str) -> TileCoding:
    tile = _first_tile(page, fh)
    tables = page.jpegtables
    if tile is None or page.is_ndpi:
        return TileCoding("jpeg", photometric, jpeg_tables=tables)
    frame = parse_jpeg_frame(merge_tables(tables, tile))
    if not frame.baseline or frame.components != RGB_SAMPLES:
        return TileCoding("jpeg", photometric, jpeg_tables=tables)
    needs_adobe = False
    if page.photometric == _TIFF_PHOTOMETRIC_RGB and not frame.jfif:
        # tifffile's jpeg_decode_colorspace: RGB photometric without JFIF is Aperio's RGB JPEG.
        if frame.adobe_transform is None:
            needs_adobe = True
        dicom = "RGB" if frame.adobe_transform in (None, 0) else "YBR_FULL_422"
    else:
        dicom = "YBR_FULL_422" if frame.chroma_subsampled else "YBR_FULL"
    if dicom == "RGB" and frame.chroma_subsampled:
        dicom = ""  # subsampled RGB has no DICOM signalling: re-encode
    return TileCoding(
        "jpeg",
        "rgb" if dicom == "RGB" else "ycbcr",
        jpeg_tables=tables,
        jpeg_needs_adobe_rgb=needs_adobe,
        jpeg_frame=frame.sampling[0],
        dicom_photometric=dicom or None,
    )


def _tiff_j2k_coding(
    page: tifffile.TiffPage, fh: BinaryIO, code: int, photometric: str
) -> TileCoding:
    tile = _first_tile(page, fh)
    if tile is None or not tile.startswith(J2K_SOC) or code == _TIFF_APERIO_J2K_YCBCR:
        return TileCoding("jpeg2000", photometric)
    coding = parse_j2k_codestream(tile)
    if coding.components != RGB_SAMPLES:
        return TileCoding("jpeg2000", photometric)
    if coding.multiple_component_transform:
        dicom = "YBR_RCT" if coding.reversible else "YBR_ICT"
    else:
        dicom = "RGB"
    return TileCoding("jpeg2000", "rgb", dicom_photometric=dicom, j2k_reversible=coding.reversible)


def _open_tiff(path: Path, limits: SlideLimits) -> SourceSlide:
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        tif = tifffile.TiffFile(path, is_ndpi=_ndpi_offsets(path))
    except Exception as exc:  # tifffile raises many types on malformed files
        raise UnsupportedFormatError("TIFF that tifffile cannot parse") from exc
    if not tif.pages:
        tif.close()
        raise CorruptSlideError("TIFF whose first IFD cannot be read")
    raw_fh = path.open("rb")
    slide = SourceSlide(
        format=_tiff_format(tif), levels=[], mpp=None, objective_power=None, icc_profile=None
    )
    slide.closers += [tif.close, raw_fh.close]
    try:
        series = tif.series[0]
        total_tiles = 0
        for index, level in enumerate(series.levels):
            page = level.keyframe
            if not isinstance(page, tifffile.TiffPage):
                raise UnsupportedFormatError("pyramid level is not a plain TIFF page")
            _check_page(page, limits)
            tiled = bool(page.is_tiled) and not page.is_ndpi
            tile_width = int(page.tilewidth) if page.is_tiled else int(page.imagewidth)
            if page.is_tiled:
                tile_height = int(page.tilelength)
            else:
                tile_height = min(int(page.rowsperstrip), int(page.imagelength))
            count = len(page.dataoffsets)
            if not page.is_ndpi:
                _check_tile_grid(
                    index,
                    (int(page.imagewidth), int(page.imagelength)),
                    (tile_width, tile_height),
                    count,
                )
            total_tiles += count
            if total_tiles > limits.max_tile_count:
                raise SlideBombError("tiles exceed MAX_TILE_COUNT")
            slide.levels.append(
                _TiffLevel(
                    page,
                    raw_fh,
                    index,
                    width=int(page.imagewidth),
                    height=int(page.imagelength),
                    tile_width=tile_width,
                    tile_height=tile_height,
                    tiled=tiled,
                    coding=_tiff_coding(page, raw_fh),
                    tile_count=count,
                    stored_bytes=sum(page.databytecounts),
                    has_missing_tiles=any(c == 0 for c in page.databytecounts),
                )
            )
        first = series.levels[0].keyframe
        icc = first.iccprofile if isinstance(first, tifffile.TiffPage) else None
        slide.icc_profile = bytes(icc) if icc else None
        slide.mpp, slide.objective_power = _tiff_metadata(path, tif)
        slide.thumbnail = _tiff_thumbnail(tif, limits)
    except SlideError:
        slide.close()
        raise
    except Exception as exc:
        slide.close()
        raise UnsupportedFormatError("TIFF pyramid that cannot be read") from exc
    return slide


NDPI_64BIT_OFFSETS_FROM_BYTES = 1 << 32
"""Hamamatsu NDPI stores 64-bit IFD offsets; below 4 GiB their high halves are zero."""


def _ndpi_offsets(path: Path) -> bool:
    """tifffile reads a file named ``.ndpi`` with 64-bit IFD offsets. Below 4 GiB every NDPI
    offset fits in 32 bits, so the classic reading is right for every NDPI writer, including
    those that write a classic TIFF header (tifffile still knows the NDPI pages by their tags);
    only a larger file needs the 64-bit reading, whatever its name."""
    return path.stat().st_size >= NDPI_64BIT_OFFSETS_FROM_BYTES


def _check_tile_grid(
    index: int, size: tuple[int, int], tile: tuple[int, int], stored_tiles: int
) -> None:
    """The level's stored tiles (or strips) must cover its declared size exactly (TIFF 6.0 §15:
    TilesAcross x TilesDown tiles). A vendor's XML that declares other level sizes than the pages
    hold (tifffile takes a Philips file's sizes from its XML) would otherwise be copied wrong."""
    across, down = math.ceil(size[0] / tile[0]), math.ceil(size[1] / tile[1])
    if across * down != stored_tiles:
        raise CorruptSlideError(
            f"level {index}: {stored_tiles} tiles of {tile[0]}x{tile[1]} px stored, but its "
            f"declared size {size[0]}x{size[1]} px needs {across * down} (does the scanner's "
            "metadata describe other levels than the file holds?)"
        )


def _tiff_thumbnail(tif: tifffile.TiffFile, limits: SlideLimits) -> SourceThumbnail | None:
    """The series tifffile names "Thumbnail" (Aperio SVS), if it is a small RGB image."""
    pages = [
        series.pages[0] for series in tif.series[1:] if series.name == "Thumbnail" and series.pages
    ]
    page = pages[0] if pages else None
    if not isinstance(page, tifffile.TiffPage) or page.samplesperpixel != RGB_SAMPLES:
        return None
    width, height = int(page.imagewidth), int(page.imagelength)
    if max(width, height) > min(SOURCE_THUMBNAIL_MAX_PX, limits.max_tile_dimension_px):
        return None

    def read() -> Pixels:
        try:
            pixels = np.asarray(page.asarray(), np.uint8)
        except Exception as exc:  # codecs raise their own error types
            raise CorruptSlideError("the source's thumbnail image does not decode") from exc
        if pixels.shape != (height, width, RGB_SAMPLES):
            raise CorruptSlideError("the source's thumbnail image is not RGB")
        return pixels

    return SourceThumbnail(width=width, height=height, read=read)


def _check_page(page: tifffile.TiffPage, limits: SlideLimits) -> None:
    width, height = int(page.imagewidth), int(page.imagelength)
    if max(width, height) > limits.max_image_dimension_px:
        raise SlideBombError("level exceeds MAX_IMAGE_DIMENSION_PX")
    if width * height > limits.max_decoded_pixels:
        raise SlideBombError("level exceeds MAX_DECODED_PIXELS")
    if page.samplesperpixel != RGB_SAMPLES or page.dtype != np.uint8 or page.planarconfig != 1:
        raise UnsupportedFormatError("only 8-bit interleaved RGB slides are converted")
    tile_w = int(page.tilewidth) if page.is_tiled else width
    tile_h = int(page.tilelength) if page.is_tiled else min(int(page.rowsperstrip), height)
    if max(tile_w, tile_h) > limits.max_tile_dimension_px:
        raise SlideBombError("tile or strip exceeds MAX_TILE_DIMENSION_PX")
    if tile_w * tile_h * RGB_SAMPLES > limits.max_tile_decoded_bytes:
        raise SlideBombError("tile or strip exceeds MAX_TILE_DECODED_BYTES")


def _tiff_format(tif: tifffile.TiffFile) -> str:
    first = tif.pages.first
    for flag, name in (
        ("is_philips", "philips_tiff"),
        ("is_ndpi", "hamamatsu_ndpi"),
        ("is_ome", "ome_tiff"),
        ("is_svs", "aperio_svs"),
    ):
        if getattr(first, flag, False):
            return name
    return "generic_tiff"


def _tiff_metadata(
    path: Path, tif: tifffile.TiffFile
) -> tuple[tuple[float, float] | None, float | None]:
    """Level-0 mpp and objective power as OpenSlide reads them (vendor-aware: the properties the
    de-identified event carries); the resolution tags where OpenSlide has no spacing (a striped
    generic TIFF, which it does not open); OME-XML for OME-TIFF, which it does not parse.

    OpenSlide is loaded anyway for the re-open check; tiffslide, which read these before, costs
    0.6 s of imports on the critical path of a DICOM-only conversion."""
    import openslide

    mpp_x: float | None = None
    mpp_y: float | None = None
    power: float | None = None
    try:
        with openslide.OpenSlide(path) as reader:
            props = reader.properties
            mpp_x = _positive(props.get(openslide.PROPERTY_NAME_MPP_X))
            mpp_y = _positive(props.get(openslide.PROPERTY_NAME_MPP_Y))
            power = _positive(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER))
            if not (mpp_x and mpp_y):
                mpp_x, mpp_y = _philips_level0_mpp(props.get(_PHILIPS_LEVEL0_SPACING))
    except openslide.OpenSlideError:  # metadata is optional; the pyramid was read above
        pass
    if not (mpp_x and mpp_y):
        mpp_x, mpp_y = _resolution_mpp(tif.pages.first)
    if tif.is_ome and tif.ome_metadata:
        ome_mpp, ome_power = _ome_metadata(tif.ome_metadata)
        mpp_x, mpp_y = ome_mpp if ome_mpp else (mpp_x, mpp_y)
        power = ome_power or power
    if mpp_x and mpp_y:
        return (mpp_x, mpp_y), power
    return None, power


_PHILIPS_LEVEL0_SPACING = "philips.PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE[0].DICOM_PIXEL_SPACING"
"""OpenSlide's name for the full-resolution level's spacing in a Philips TIFF's XML. OpenSlide
takes its mpp from the scanned image's own DICOM_PIXEL_SPACING, which some files carry only per
level."""


def _philips_level0_mpp(spacing: str | None) -> tuple[float | None, float | None]:
    """DICOM Pixel Spacing (PS3.3 C.7.6.2.1.1: row spacing, then column spacing, in mm), as
    Philips writes it (``"0.00025" "0.00025"``), in microns per pixel (x, y)."""
    if not spacing:
        return None, None
    values = [_positive(part.strip('"')) for part in spacing.split()]
    if len(values) != 2:
        return None, None
    row_mm, column_mm = values
    if row_mm is None or column_mm is None:
        return None, None
    return column_mm * 1000, row_mm * 1000


# TIFF 6.0 §8 ResolutionUnit: 2 = inch, 3 = centimetre; 1 (no unit) gives no spacing.
_TIFF_RESOLUTION_UNIT_TAG = 296
_TIFF_RESOLUTION_TAGS = (282, 283)
_TIFF_ABSOLUTE_UNITS = frozenset({2, 3})


def _resolution_mpp(page: tifffile.TiffPage) -> tuple[float | None, float | None]:
    """Microns per pixel from XResolution, YResolution and an absolute ResolutionUnit."""
    tags = page.tags
    if tags.valueof(_TIFF_RESOLUTION_UNIT_TAG) not in _TIFF_ABSOLUTE_UNITS or any(
        code not in tags for code in _TIFF_RESOLUTION_TAGS
    ):
        return None, None
    per_um_x, per_um_y = page.get_resolution(tifffile.RESUNIT.MICROMETER)
    return _positive(1 / per_um_x if per_um_x else None), _positive(
        1 / per_um_y if per_um_y else None
    )


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


_OME_UNIT_TO_UM = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}


def _ome_metadata(xml: str) -> tuple[tuple[float, float] | None, float | None]:
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(xml)
    except Exception:
        return None, None
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels")), None)
    objective = next((e for e in root.iter() if e.tag.endswith("}Objective")), None)
    power = _positive(objective.get("NominalMagnification")) if objective is not None else None
    if pixels is None:
        return None, power
    x = _positive(pixels.get("PhysicalSizeX"))
    y = _positive(pixels.get("PhysicalSizeY"))
    x_unit = _OME_UNIT_TO_UM.get(pixels.get("PhysicalSizeXUnit", "µm"))
    y_unit = _OME_UNIT_TO_UM.get(pixels.get("PhysicalSizeYUnit", "µm"))
    if x is None or y is None or x_unit is None or y_unit is None:
        return None, power
    return (x * x_unit, y * y_unit), power


# -- DICOM ----------------------------------------------------------------------------------


class _DicomLevel(SourceLevel):
    def __init__(
        self,
        fh: BinaryIO,
        layout: PixelDataLayout,
        transfer_syntax: str,
        frame_bytes: int,
        index: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(index=index, **kwargs)
        self._fh = fh
        self._layout = layout
        self._ts = transfer_syntax
        self._frame_bytes = frame_bytes

    def read_raw(self, index: int) -> bytes:
        if self._layout.encapsulated:
            offset, length = self._layout.fragments[index]
        else:
            offset = self._layout.fragments[0][0] + index * self._frame_bytes
            length = self._frame_bytes
        if offset + length > self._layout.file_size_bytes:
            raise TruncatedSlideError("a frame points past the end of the file")
        data = os.pread(self._fh.fileno(), length, offset)
        if len(data) != length:
            raise TruncatedSlideError("a frame points past the end of the file")
        if self._ts == _TS_JPEG_BASELINE and data.endswith(b"\xff\xd9\x00"):
            # PS3.5 §A.4: fragments are padded to an even length; a JPEG ends at its EOI.
            data = data[:-1]
        return data

    def decode(self, raw: RawTile | None, index: int) -> Pixels:
        if raw is None:
            return self.blank_tile()
        data = bytes(raw) if isinstance(raw, memoryview) else raw  # codecs take bytes
        return self._padded(decode_frame(data, self.coding.compression, self.coding, self))


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


def _open_dicom(sources: Sequence[Path], limits: SlideLimits) -> SourceSlide:
    instances = []
    for path in sources:
        header = read_dicom_header(path, limits)
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
        format="dicom_wsi", levels=[], mpp=None, objective_power=None, icc_profile=None
    )
    seen_sizes: set[tuple[int, int]] = set()
    try:
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
            slide.levels.append(_dicom_level(ds, header.pixel_data, fh, len(slide.levels), limits))
        first = instances[0][1].dataset
        slide.mpp = _dicom_mpp(first)
        optical = first.get("OpticalPathSequence")
        if optical:
            item = optical[0]
            icc = item.get("ICCProfile")
            slide.icc_profile = bytes(icc) if icc else None
            slide.objective_power = _positive(item.get("ObjectiveLensPower"))
    except SlideError:
        slide.close()
        raise
    except (AttributeError, KeyError, ValueError, TypeError) as exc:
        slide.close()
        raise CorruptSlideError("DICOM WSI instance with missing or bad attributes") from exc
    return slide


def _dicom_level(
    ds: Any, layout: PixelDataLayout, fh: BinaryIO, index: int, limits: SlideLimits
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
    if max(width, height) > limits.max_image_dimension_px:
        raise SlideBombError("level exceeds MAX_IMAGE_DIMENSION_PX")
    if max(tile_w, tile_h) > limits.max_tile_dimension_px:
        raise SlideBombError("frame exceeds MAX_TILE_DIMENSION_PX")
    frames = int(ds.get("NumberOfFrames", 1))
    expected = math.ceil(width / tile_w) * math.ceil(height / tile_h)
    if frames != expected:
        raise CorruptSlideError("TILED_FULL frame count does not match the tile grid")
    ts = str(ds.file_meta.TransferSyntaxUID)
    photometric = str(ds.PhotometricInterpretation)
    frame_bytes = tile_w * tile_h * RGB_SAMPLES
    if ts == _TS_JPEG_BASELINE:
        first = fh.seek(layout.fragments[0][0]) if layout.fragments else None
        frame = parse_jpeg_frame(fh.read(layout.fragments[0][1])) if first is not None else None
        coding = TileCoding(
            "jpeg",
            "rgb" if photometric == "RGB" else "ycbcr",
            jpeg_frame=frame.sampling[0] if frame else None,
            dicom_photometric=photometric if frame and frame.baseline else None,
        )
    elif ts in (_TS_J2K, _TS_J2K_LOSSLESS):
        coding = TileCoding("jpeg2000", "rgb", dicom_photometric=photometric)
    elif ts in (_TS_EXPLICIT_LE, _TS_IMPLICIT_LE) and photometric == "RGB":
        if int(ds.get("PlanarConfiguration", 0)) != 0:
            raise UnsupportedFormatError("planar native DICOM pixel data is not converted")
        coding = TileCoding("none", "rgb", dicom_photometric="RGB")
        if layout.encapsulated or layout.fragments[0][1] < frames * frame_bytes:
            raise TruncatedSlideError("native pixel data shorter than its frames")
    else:
        raise UnsupportedFormatError("DICOM transfer syntax that is not converted")
    if layout.encapsulated and len(layout.fragments) != frames:
        raise UnsupportedFormatError("DICOM frames split over several fragments")
    return _DicomLevel(
        fh,
        layout,
        ts,
        frame_bytes,
        index,
        width=width,
        height=height,
        tile_width=tile_w,
        tile_height=tile_h,
        tiled=True,
        coding=coding,
        tile_count=frames,
        stored_bytes=sum(length for _, length in layout.fragments),
    )


def _dicom_mpp(ds: Any) -> tuple[float, float] | None:
    try:
        spacing = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
        row_mm, column_mm = float(spacing[0]), float(spacing[1])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    if row_mm <= 0 or column_mm <= 0:
        return None
    return column_mm * 1000.0, row_mm * 1000.0


def is_self_contained_j2k(data: bytes) -> bool:
    return data.startswith(J2K_SOC) and not is_jp2_file(data)

"""The TIFF family (SVS, generic tiled TIFF, OME-TIFF, NDPI, Philips, Leica SCN, Ventana BIF).

Read through tifffile's series (the one with the most pixels is the scanned image's pyramid:
``series[0]`` for most vendors, not for a Leica SCN whose macro comes first); raw tiles are
read from the offsets and byte counts of each level's page, never through a decoder. NDPI levels
are one JPEG stripe with restart markers; tifffile presents them as stripes of restart intervals,
which are re-encoded, not copied. tifffile parses the file through a
:class:`~.counting.CountingFile`, so the directories it reads are counted with the tiles.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import imagecodecs
import numpy as np
import tifffile

from slidestream_wsi.detect import SlideFormat, tiff_vendor_format
from slidestream_wsi.errors import (
    CorruptSlideError,
    SlideBombError,
    SlideError,
    TruncatedSlideError,
    UnsupportedFormatError,
)
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.pyramid.counting import ByteCounter, CountingFile
from slidestream_wsi.pyramid.level import (
    COPY_RUN_BYTES,
    RAW_ROW_BUFFER_MAX_BYTES,
    RAW_RUN_BYTES,
    RGB_SAMPLES,
    Grey,
    Pixels,
    RawTile,
    SourceLevel,
    SourceSlide,
    SourceThumbnail,
    TileCoding,
)
from slidestream_wsi.pyramid.spacing import tiff_spacing
from slidestream_wsi.pyramid.tiff_coding import tiff_coding

SOURCE_THUMBNAIL_MAX_PX = 4096
"""Largest width or height of a source's own thumbnail image that is decoded for the DICOM
thumbnail instance (scanners store a few hundred pixels; anything larger is not a thumbnail)."""


class _TiffLevel(SourceLevel):
    def __init__(
        self,
        page: tifffile.TiffPage,
        fh: IO[bytes],
        counter: ByteCounter,
        index: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(index=index, **kwargs)
        self._page = page
        self._fh = fh
        self._counter = counter
        self._offsets: tuple[int, ...] = tuple(page.dataoffsets)
        self._counts: tuple[int, ...] = tuple(page.databytecounts)
        self._file_size = fh.seek(0, 2)
        self._run_buffer: bytearray | None = None

    def _read_coding(self) -> TileCoding:
        fd = self._fh.fileno()
        return tiff_coding(self._page, lambda offset, count: self._counter.pread(fd, count, offset))

    def read_raw(self, index: int) -> bytes | None:
        offset, count = self._offsets[index], self._counts[index]
        if count == 0 or offset == 0:
            return None
        if offset + count > self._file_size:
            raise TruncatedSlideError("a tile points past the end of the file")
        # pread: no shared file position, so the copying and the generating threads can both
        # read the level.
        return self._counter.pread(self._fh.fileno(), count, offset)

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
            run = self._counter.pread_exact(self._fh.fileno(), end - offset, offset)
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
        self._counter.preadv_exact(self._fh.fileno(), view, first)
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

    def decode_luma(self, raw: RawTile | None, index: int) -> Grey | None:
        """JPEG tiles whose components are YCbCr (TIFF 6.0 §21-22, or JFIF): Y is the luminance."""
        coding = self.coding
        if raw is None or not self.tiled or coding.compression != "jpeg":
            return None
        if coding.photometric != "ycbcr" or self._page.planarconfig != 1:
            return None
        data = bytes(raw) if isinstance(raw, memoryview) else raw  # codecs take bytes
        try:
            grey = imagecodecs.jpeg8_decode(data, tables=coding.jpeg_tables, outcolorspace="GRAY")
        except Exception as exc:  # codecs raise their own error types
            raise CorruptSlideError("a tile does not decode") from exc
        grey = np.asarray(grey, np.uint8)
        grey = grey[:, :, 0] if grey.ndim == 3 else grey
        if grey.shape == (self.tile_height, self.tile_width):
            return grey
        return self._padded(np.repeat(grey[:, :, None], RGB_SAMPLES, axis=2))[:, :, 0]


def open_tiff(path: Path, limits: SlideLimits) -> SourceSlide:
    """Open a TIFF-family slide: its pyramid (the main series' levels), spacing and thumbnail."""
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    counter = ByteCounter()
    fh = CountingFile(path, counter)
    try:
        tif = tifffile.TiffFile(cast(IO[bytes], fh), is_ndpi=ndpi_offsets(path))
    except Exception as exc:  # tifffile raises many types on malformed files
        fh.close()
        raise UnsupportedFormatError("TIFF that tifffile cannot parse") from exc
    slide = SourceSlide(
        format="generic_tiff",
        levels=[],
        mpp=None,
        objective_power=None,
        icc_profile=None,
        counter=counter,
        total_bytes=path.stat().st_size,
    )
    slide.closers += [fh.close, tif.close]
    try:
        if not tif.pages:
            raise CorruptSlideError("TIFF whose first IFD cannot be read")
        slide.format = (tiff_vendor_format(tif.pages.first) or SlideFormat.GENERIC_TIFF).value
        total_tiles = 0
        main = main_series(tif)
        for index, level in enumerate(main.levels):
            slide.levels.append(
                _tiff_level(level.keyframe, index, cast(IO[bytes], fh), counter, limits)
            )
            total_tiles += slide.levels[-1].tile_count
            if total_tiles > limits.max_tile_count:
                raise SlideBombError("tiles exceed MAX_TILE_COUNT")
        first = main.levels[0].keyframe
        assert isinstance(first, tifffile.TiffPage)  # _tiff_level checked it
        slide.icc_profile = bytes(first.iccprofile) if first.iccprofile else None
        slide.mpp, slide.objective_power = tiff_spacing(tif, first)
        slide.thumbnail = _tiff_thumbnail(tif, limits)
    except SlideError:
        slide.close()
        raise
    except Exception as exc:
        slide.close()
        raise UnsupportedFormatError("TIFF pyramid that cannot be read") from exc
    return slide


def main_series(tif: tifffile.TiffFile) -> tifffile.TiffPageSeries:
    """The series with the most level-0 pixels: the scanned image. tifffile lists a file's
    images in file order, and a Leica SCN stores its macro image first."""
    if not tif.series:
        raise CorruptSlideError("TIFF without an image series")
    return max(tif.series, key=lambda series: _pixel_count(series.levels[0].shape))


def _pixel_count(shape: tuple[int, ...]) -> int:
    # A series' shape is (rows, columns[, samples]) for every layout the reader accepts.
    return int(shape[0]) * int(shape[1]) if len(shape) >= 2 else 0


def _tiff_level(
    page: object, index: int, fh: IO[bytes], counter: ByteCounter, limits: SlideLimits
) -> _TiffLevel:
    if not isinstance(page, tifffile.TiffPage):
        raise UnsupportedFormatError("pyramid level is not a plain TIFF page")
    _check_page(page, limits)
    width, height = int(page.imagewidth), int(page.imagelength)
    tile_width = int(page.tilewidth) if page.is_tiled else width
    tile_height = int(page.tilelength) if page.is_tiled else min(int(page.rowsperstrip), height)
    count = len(page.dataoffsets)
    if not page.is_ndpi:
        _check_tile_grid(index, (width, height), (tile_width, tile_height), count)
    # Vectorised: a level 0 of a large slide has tens of thousands of tiles, and QC opens every
    # level to read two small ones.
    byte_counts = np.asarray(page.databytecounts, dtype=np.int64)
    return _TiffLevel(
        page,
        fh,
        counter,
        index,
        width=width,
        height=height,
        tile_width=tile_width,
        tile_height=tile_height,
        tiled=bool(page.is_tiled) and not page.is_ndpi,
        tile_count=count,
        stored_bytes=int(byte_counts.sum()),
        has_missing_tiles=bool((byte_counts == 0).any()),
    )


NDPI_64BIT_OFFSETS_FROM_BYTES = 1 << 32
"""Hamamatsu NDPI stores 64-bit IFD offsets; below 4 GiB their high halves are zero."""


def ndpi_offsets(path: Path) -> bool:
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

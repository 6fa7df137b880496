"""What every container's reader shares: a level's geometry, its raw tiles and a decoder, and
the opened slide with its spacing and byte counter. :mod:`~.tiff` and :mod:`~.dicom` fill them.

A level reads its stored tiles raw (the converter copies them without decoding; the copy pass
reads runs of back-to-back tiles at a time) or decodes them. Every read is counted in the slide's
:class:`~.counting.ByteCounter`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from slidestream_wsi.errors import CorruptSlideError
from slidestream_wsi.pyramid.counting import ByteCounter
from slidestream_wsi.pyramid.geometry import PyramidLevel, level_geometry
from slidestream_wsi.pyramid.jpeg import SOI, merge_tables, with_adobe_rgb_marker
from slidestream_wsi.pyramid.spacing import Mpp

Compression = Literal["none", "jpeg", "jpeg2000", "jpegxl", "deflate", "lzw", "webp"]
"""The codecs a level's tiles are reported in (and the converter writes)."""

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
Grey = npt.NDArray[np.uint8]
"""A tile's luminance: (height, width), uint8."""


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
        coding: TileCoding | None = None,
        tile_count: int,
        stored_bytes: int,
        has_missing_tiles: bool = False,
        declared_mpp: Mpp | None = None,
    ) -> None:
        self.index = index
        self.declared_mpp = declared_mpp
        """The level's own spacing where the container states one per level (DICOM)."""
        self.stored_bytes = stored_bytes
        """Sum of the stored tile sizes (bounds the copied output's size)."""
        self.has_missing_tiles = has_missing_tiles
        self.width = width
        self.height = height
        self.tile_width = tile_width
        self.tile_height = tile_height
        self.tiled = tiled
        if coding is not None:
            self.__dict__["coding"] = coding  # else read on first use: see coding below
        self.tile_count = tile_count

    @functools.cached_property
    def coding(self) -> TileCoding:
        """How the tiles are coded, read from the first stored tile on first use (the
        converter needs it; QC and inference, which only decode, skip that read)."""
        return self._read_coding()

    def _read_coding(self) -> TileCoding:
        raise NotImplementedError

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

    def decode_luma(self, raw: RawTile | None, index: int) -> Grey | None:
        """Tile ``index``'s luminance decoded alone (a YCbCr JPEG's Y channel: no chroma, no
        colour conversion), padded like :meth:`decode`; None where there is no such shortcut."""
        return None

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
    """An opened slide: its levels (largest first), spacing and what the outputs carry over."""

    format: str
    levels: list[SourceLevel]
    mpp: Mpp | None
    """Level-0 microns per pixel (x, y), by the one rule of :mod:`~.spacing`."""
    objective_power: float | None
    icc_profile: bytes | None
    closers: list[Callable[[], None]] = field(default_factory=list)
    thumbnail: SourceThumbnail | None = None
    counter: ByteCounter = field(default_factory=ByteCounter)
    """Every byte read from the slide's files: headers, directories and tiles."""
    total_bytes: int = 0
    """Size of the slide's files together."""

    @property
    def bytes_read(self) -> int:
        return self.counter.bytes_read

    @property
    def geometry(self) -> tuple[PyramidLevel, ...]:
        """Each level's size, tile size and spacing (:func:`~.geometry.level_geometry`)."""
        return level_geometry(self.mpp, self.levels)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()

    def __enter__(self) -> SourceSlide:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

"""QC's view of a slide: the slide reader's levels, read whole (small ones) or tile by tile.

QC decides from level metadata alone (:func:`slidestream_wsi.qc.levels.levels_needed`) which
levels it needs, so the service downloads only those DICOM instances; :class:`SlidePyramid` then
decodes whole small levels (:meth:`~SlidePyramid.read_level`) or chosen tiles of a larger level
(:meth:`~SlidePyramid.iter_tiles`) through :mod:`slidestream_wsi.pyramid`, whose byte counter
sees every read (headers, directories and tiles), so the reported fraction read is honest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.errors import CorruptSlideError, PyramidLevelError, UnsupportedFormatError
from slidestream_wsi.pyramid import PyramidLevel, SourceLevel, SourceSlide, open_source

__all__ = [
    "MAX_WHOLE_LEVEL_PIXELS",
    "PyramidLevel",
    "PyramidSource",
    "SlidePyramid",
    "open_dicom_pyramid",
    "open_tiff_pyramid",
    "read_dicom_levels",
]

MAX_WHOLE_LEVEL_PIXELS = 64 * 1024 * 1024
"""Largest level, in pixels, that ``read_level`` decodes whole (192 MiB as RGB): QC reads small
levels whole and larger ones tile by tile."""


@runtime_checkable
class PyramidSource(Protocol):
    """A slide's pyramid as QC reads it."""

    @property
    def levels(self) -> Sequence[PyramidLevel]: ...

    @property
    def total_bytes(self) -> int:
        """Size of the whole slide, every file of it, in bytes."""
        ...

    @property
    def bytes_read(self) -> int:
        """Bytes read from the files so far."""
        ...

    def read_level(self, index: int) -> npt.NDArray[np.uint8]:
        """The whole level as an RGB ``(height, width, 3)`` array (small levels only)."""
        ...

    def iter_tiles(
        self, index: int, origins: Iterable[tuple[int, int]] | None = None
    ) -> Iterator[tuple[int, int, npt.NDArray[np.uint8]]]:
        """``(x, y, rgb)`` of the level's tiles (or only those at ``origins``, pixel offsets
        that are multiples of the tile size), cropped to the level's extent."""
        ...


class SlidePyramid:
    """An opened :class:`~slidestream_wsi.pyramid.SourceSlide` as a :class:`PyramidSource`."""

    def __init__(
        self,
        slide: SourceSlide,
        total_bytes: int | None = None,
        all_levels: Sequence[PyramidLevel] | None = None,
    ) -> None:
        self._slide = slide
        self._total = slide.total_bytes if total_bytes is None else total_bytes
        self._levels = _number_levels(slide.geometry, all_levels)

    @property
    def levels(self) -> Sequence[PyramidLevel]:
        return self._levels

    @property
    def total_bytes(self) -> int:
        return self._total

    @property
    def bytes_read(self) -> int:
        return self._slide.bytes_read

    def read_level(self, index: int) -> npt.NDArray[np.uint8]:
        level = self._level(index)[0]
        if level.pixels > MAX_WHOLE_LEVEL_PIXELS:
            raise PyramidLevelError(f"level {index} is too large to decode whole")
        out = np.empty((level.height_px, level.width_px, 3), dtype=np.uint8)
        for x, y, tile in self.iter_tiles(index):
            out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        return out

    def iter_grey_tiles(
        self, index: int, origins: Iterable[tuple[int, int]] | None = None
    ) -> Iterator[tuple[int, int, npt.NDArray[np.uint8]]]:
        """As :meth:`iter_tiles`, but the tiles' luminance (BT.601 luma, ``(h, w)``): a JPEG
        tile in YCbCr decodes its Y channel alone, skipping the chroma and colour conversion."""
        return self.iter_tiles(index, origins, grey=True)

    def iter_tiles(
        self, index: int, origins: Iterable[tuple[int, int]] | None = None, grey: bool = False
    ) -> Iterator[tuple[int, int, npt.NDArray[np.uint8]]]:
        level, source = self._level(index)
        tw, th = level.tile_width_px, level.tile_height_px
        if origins is None:
            origins = (
                (x, y) for y in range(0, level.height_px, th) for x in range(0, level.width_px, tw)
            )
        for x, y in origins:
            if x % tw or y % th or not (0 <= x < level.width_px and 0 <= y < level.height_px):
                raise PyramidLevelError("a tile origin is off the level's tile grid")
            tile = _decode(source, (y // th) * source.columns + x // tw, grey)
            yield x, y, tile[: min(th, level.height_px - y), : min(tw, level.width_px - x)]

    def _level(self, index: int) -> tuple[PyramidLevel, SourceLevel]:
        for position, level in enumerate(self._levels):
            if level.index == index:
                return level, self._slide.levels[position]
        raise PyramidLevelError(f"level {index} is not among the levels given")

    def close(self) -> None:
        self._slide.close()

    def __enter__(self) -> SlidePyramid:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _decode(level: SourceLevel, index: int, grey: bool) -> npt.NDArray[np.uint8]:
    raw = level.read_raw(index)
    if grey:
        luma = level.decode_luma(raw, index)
        if luma is not None:
            return luma
    rgb = level.decode(raw, index)
    if rgb.shape != (level.tile_height, level.tile_width, 3):
        raise CorruptSlideError("a tile decodes to another size than the tile size")
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), np.uint8) if grey else rgb


def _number_levels(
    given: Sequence[PyramidLevel], all_levels: Sequence[PyramidLevel] | None
) -> tuple[PyramidLevel, ...]:
    """The given levels with the slide's own index and downsample when ``all_levels`` (the
    whole pyramid's metadata) is known; else numbered from the largest level given."""
    if all_levels is None:
        return tuple(given)
    by_size = {(level.width_px, level.height_px): level for level in all_levels}
    numbered: list[PyramidLevel] = []
    for level in given:
        known = by_size.get((level.width_px, level.height_px))
        if known is None:
            raise PyramidLevelError("a DICOM file matches no level of the pyramid's metadata")
        numbered.append(
            PyramidLevel(
                known.index,
                level.width_px,
                level.height_px,
                level.mpp_x,
                level.mpp_y,
                known.downsample,
                level.tile_width_px,
                level.tile_height_px,
            )
        )
    return tuple(numbered)


def open_tiff_pyramid(path: Path) -> SlidePyramid:
    """Open a TIFF-family slide for QC (its pyramid is tifffile's first series)."""
    slide = open_source([path])
    if slide.format == "dicom_wsi":
        slide.close()
        raise UnsupportedFormatError("a DICOM file is no TIFF pyramid")
    return SlidePyramid(slide)


def read_dicom_levels(paths: Sequence[Path]) -> tuple[PyramidLevel, ...]:
    """Level metadata of DICOM instances (headers only), for :func:`levels_needed`."""
    with open_dicom_pyramid(paths) as pyramid:
        return tuple(pyramid.levels)


def open_dicom_pyramid(
    paths: Sequence[Path],
    total_bytes: int | None = None,
    all_levels: Sequence[PyramidLevel] | None = None,
) -> SlidePyramid:
    """Open DICOM WSI instance files for QC; LABEL/OVERVIEW/THUMBNAIL instances are ignored.

    ``paths`` may be only some levels' files (those :func:`levels_needed` chose). Then pass
    ``total_bytes`` (the whole series' size, so the fraction read stays honest) and
    ``all_levels`` (the whole pyramid's level metadata, so each file keeps the slide's level
    index and downsample); without ``all_levels`` the given files are numbered largest first.
    """
    slide = open_source(list(paths))
    if slide.format != "dicom_wsi":
        slide.close()
        raise UnsupportedFormatError("the files are not a DICOM WSI series")
    return SlidePyramid(slide, total_bytes, all_levels)

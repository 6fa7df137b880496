"""Level readers that QC reads pyramids through, counting every byte they read from the files.

QC decides from level metadata alone (:func:`slidestream_wsi.qc.levels.levels_needed`) which
levels it needs, so the service downloads only those DICOM instances; the readers then decode
whole small levels (:meth:`PyramidSource.read_level`) or chosen tiles of a larger level
(:meth:`PyramidSource.iter_tiles`). ``bytes_read`` is what went through ``read()``: headers,
directories and tile data together, so the reported fraction of the slide read is honest.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, cast, runtime_checkable

import cv2
import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_wsi.errors import (
    CorruptSlideError,
    PyramidLevelError,
    SlideBombError,
    TruncatedSlideError,
    UnsupportedFormatError,
)
from slidestream_wsi.limits import DEFAULT_LIMITS

if TYPE_CHECKING:
    # pydicom takes about a second to import; only DICOM pyramids need it, at open time.
    import pydicom

MAX_WHOLE_LEVEL_PIXELS = 64 * 1024 * 1024
"""Largest level, in pixels, that ``read_level`` decodes whole (192 MiB as RGB): QC reads small
levels whole and larger ones tile by tile."""

_MM_PER_UM = 1e-3
_UM_PER_CM = 1e4
_UM_PER_INCH = 25_400.0
_PLAUSIBLE_MPP = (0.05, 500.0)
"""µm/px a slide level can have (a 100x objective to a macro photograph); 72 dpi is not one."""
_APERIO_MPP = re.compile(r"\bMPP\s*=\s*([0-9.]+)")
# PS3.6 transfer syntaxes QC decodes: JPEG baseline (what the converter writes), JPEG 2000 and
# uncompressed little endian.
_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
_JPEG_2000 = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})
_NATIVE = frozenset({"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"})
_WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"


@dataclass(frozen=True, slots=True)
class PyramidLevel:
    """One resolution level of a slide, described without decoding anything."""

    index: int
    """Position in the pyramid, 0 = the full resolution."""
    width_px: int
    height_px: int
    mpp_x: float | None
    """Pixel spacing along x in micrometres per pixel, ``None`` when the file does not say."""
    mpp_y: float | None
    downsample: float
    """Level-0 width divided by this level's width."""
    tile_width_px: int
    tile_height_px: int

    @property
    def pixels(self) -> int:
        return self.width_px * self.height_px


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


class _CountingFile(io.RawIOBase):
    """A read-only file that counts the bytes its callers read."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._raw = path.open("rb", buffering=0)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)
        self.bytes_read += count or 0
        return count or 0

    def read_exact(self, offset: int, length: int) -> bytes:
        self._raw.seek(offset)
        data = self._raw.read(length)
        self.bytes_read += len(data)
        if len(data) != length:
            raise TruncatedSlideError("a tile runs past the end of the file")
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


def _check_level_shape(width_px: int, height_px: int, tile_w: int, tile_h: int) -> None:
    limits = DEFAULT_LIMITS
    if width_px <= 0 or height_px <= 0 or tile_w <= 0 or tile_h <= 0:
        raise CorruptSlideError("a level or its tiles have no pixels")
    if max(width_px, height_px) > limits.max_image_dimension_px:
        raise SlideBombError("a level exceeds MAX_IMAGE_DIMENSION_PX")
    if max(tile_w, tile_h) > limits.max_tile_dimension_px:
        raise SlideBombError("a tile exceeds MAX_TILE_DIMENSION_PX")


def _as_rgb(tile: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    if tile.dtype != np.uint8:
        raise UnsupportedFormatError("QC reads 8-bit samples only")
    if tile.ndim == 2:
        return np.repeat(tile[:, :, None], 3, axis=2)
    if tile.ndim == 3 and tile.shape[2] in (3, 4):
        return np.ascontiguousarray(tile[:, :, :3])
    raise UnsupportedFormatError("QC reads RGB or greyscale levels only")


def _luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), np.uint8)


def _as_grey(tile: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    if tile.dtype != np.uint8:
        raise UnsupportedFormatError("QC reads 8-bit samples only")
    if tile.ndim == 3 and tile.shape[2] == 1:
        return np.ascontiguousarray(tile[:, :, 0])
    if tile.ndim != 2:
        raise CorruptSlideError("a JPEG tile decodes to no single luminance channel")
    return np.asarray(tile, np.uint8)


class _TiledReader:
    """What both readers share: level checks, whole-level assembly, tile iteration."""

    _levels: tuple[PyramidLevel, ...]

    @property
    def levels(self) -> Sequence[PyramidLevel]:
        return self._levels

    def _level(self, index: int) -> PyramidLevel:
        for level in self._levels:
            if level.index == index:
                return level
        raise PyramidLevelError(f"level {index} is not among the levels given")

    def _tile(self, index: int, column: int, row: int, grey: bool = False) -> npt.NDArray[np.uint8]:
        raise NotImplementedError

    def read_level(self, index: int) -> npt.NDArray[np.uint8]:
        level = self._level(index)
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
        level = self._level(index)
        tw, th = level.tile_width_px, level.tile_height_px
        if origins is None:
            origins = (
                (x, y) for y in range(0, level.height_px, th) for x in range(0, level.width_px, tw)
            )
        for x, y in origins:
            if x % tw or y % th or not (0 <= x < level.width_px and 0 <= y < level.height_px):
                raise PyramidLevelError("a tile origin is off the level's tile grid")
            tile = self._tile(index, x // tw, y // th, grey)
            if tile.shape[0] < th or tile.shape[1] < tw:
                raise CorruptSlideError("a tile decodes smaller than the tile size")
            yield x, y, tile[: min(th, level.height_px - y), : min(tw, level.width_px - x)]


class TiffPyramid(_TiledReader):
    """A pyramidal tiled TIFF whose levels are top-level IFDs (what the converter writes)."""

    def __init__(self, path: Path) -> None:
        self._file = _CountingFile(path)
        self._total = path.stat().st_size
        try:
            self._tif = tifffile.TiffFile(cast(IO[bytes], self._file))
        except (tifffile.TiffFileError, ValueError, OSError, EOFError) as exc:
            self._file.close()
            raise CorruptSlideError("unreadable TIFF structure") from exc
        pages = [page for page in self._tif.pages if isinstance(page, tifffile.TiffPage)]
        # Reduced-resolution pages (NewSubfileType 1) are the pyramid's levels; a label or macro
        # is stripped or of another aspect, and is dropped below.
        tiled = [page for page in pages if page.is_tiled]
        if not tiled:
            self.close()
            raise UnsupportedFormatError("the TIFF has no tiled level")
        base = tiled[0]
        self._pages: list[tifffile.TiffPage] = []
        levels: list[PyramidLevel] = []
        base_mpp = _tiff_mpp(base)
        for page in tiled:
            # Levels of one pyramid keep the base's aspect; other tiled pages (a macro image
            # stored tiled) do not, and are no level.
            if page is not base and not _same_aspect(base, page):
                continue
            if page.dtype != np.uint8 or page.samplesperpixel not in (1, 3, 4):
                continue
            _check_level_shape(page.imagewidth, page.imagelength, page.tilewidth, page.tilelength)
            downsample = base.imagewidth / page.imagewidth
            own = _tiff_mpp(page) if page is not base else base_mpp
            mpp = own if own != (None, None) and page is not base else None
            if mpp is None:
                mpp = (
                    (base_mpp[0] * downsample if base_mpp[0] else None),
                    (base_mpp[1] * base.imagelength / page.imagelength if base_mpp[1] else None),
                )
            levels.append(
                PyramidLevel(
                    len(levels),
                    page.imagewidth,
                    page.imagelength,
                    mpp[0],
                    mpp[1],
                    downsample,
                    page.tilewidth,
                    page.tilelength,
                )
            )
            self._pages.append(page)
        self._levels = tuple(levels)

    @property
    def total_bytes(self) -> int:
        return self._total

    @property
    def bytes_read(self) -> int:
        return self._file.bytes_read

    def _tile(self, index: int, column: int, row: int, grey: bool = False) -> npt.NDArray[np.uint8]:
        page = self._pages[index]
        across = math.ceil(page.imagewidth / page.tilewidth)
        segment = row * across + column
        if segment >= len(page.dataoffsets):
            raise CorruptSlideError("a tile is missing from the TIFF")
        length = page.databytecounts[segment]
        if length > DEFAULT_LIMITS.max_tile_decoded_bytes:
            raise SlideBombError("a TIFF tile exceeds MAX_TILE_DECODED_BYTES")
        if length == 0:
            # TIFF 6.0 allows sparse files: a missing tile reads as empty (white) glass.
            blank = np.full((page.tilelength, page.tilewidth, 3), 255, dtype=np.uint8)
            return blank[:, :, 0] if grey else blank
        data = self._file.read_exact(page.dataoffsets[segment], length)
        try:
            if grey and _luma_jpeg(page):
                return _as_grey(
                    imagecodecs.jpeg8_decode(data, tables=page.jpegtables, outcolorspace="GRAY")
                )
            decoded, _, _ = page.decode(data, segment, jpegtables=page.jpegtables)
        except Exception as exc:  # codecs raise their own types; any failure is a bad tile
            raise CorruptSlideError("a TIFF tile does not decode") from exc
        if decoded is None:
            raise CorruptSlideError("a TIFF tile does not decode")
        rgb = _as_rgb(np.asarray(decoded)[0])
        return _luma(rgb) if grey else rgb

    def close(self) -> None:
        self._tif.close()
        self._file.close()

    def __enter__(self) -> TiffPyramid:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _luma_jpeg(page: tifffile.TiffPage) -> bool:
    """JPEG tiles stored as YCbCr (TIFF 6.0 §21-22): their Y channel is the luminance."""
    return (
        page.compression == tifffile.COMPRESSION.JPEG
        and page.photometric == tifffile.PHOTOMETRIC.YCBCR
        and page.planarconfig == tifffile.PLANARCONFIG.CONTIG
    )


def _same_aspect(base: tifffile.TiffPage, page: tifffile.TiffPage) -> bool:
    expected = base.imagelength * page.imagewidth / base.imagewidth
    return abs(page.imagelength - expected) <= max(2.0, 0.02 * expected)


def _tiff_mpp(page: tifffile.TiffPage) -> tuple[float | None, float | None]:
    """Micrometres per pixel: Aperio's ``MPP =`` first (its resolution tags are placeholders),
    else the resolution tags (TIFF 6.0 §8) when they give a plausible microscope spacing."""
    match = _APERIO_MPP.search(page.description or "")
    if match:
        value = float(match.group(1))
        if _PLAUSIBLE_MPP[0] <= value <= _PLAUSIBLE_MPP[1]:
            return value, value
    unit = int(page.resolutionunit)
    xres, yres = page.resolution
    per_unit = {
        int(tifffile.RESUNIT.CENTIMETER): _UM_PER_CM,
        int(tifffile.RESUNIT.INCH): _UM_PER_INCH,
    }
    if unit in per_unit and xres > 0 and yres > 0:
        mpp = per_unit[unit] / xres, per_unit[unit] / yres
        if all(_PLAUSIBLE_MPP[0] <= value <= _PLAUSIBLE_MPP[1] for value in mpp):
            return mpp
    return None, None


def open_tiff_pyramid(path: Path) -> TiffPyramid:
    """Open a pyramidal tiled TIFF for QC (levels as top-level IFDs, largest first)."""
    return TiffPyramid(path)


@dataclass(frozen=True, slots=True)
class _DicomInstance:
    path: Path
    transfer_syntax: str
    fragments: tuple[tuple[int, int], ...]
    native_offset: int
    frame_bytes: int
    samples: int
    photometric: str


class DicomPyramid(_TiledReader):
    """The VOLUME instances of a DICOM WSI series, one level per instance (TILED_FULL)."""

    def __init__(
        self,
        paths: Sequence[Path],
        total_bytes: int | None = None,
        all_levels: Sequence[PyramidLevel] | None = None,
    ) -> None:
        from slidestream_wsi.dicom.pixeldata import read_dicom_header

        self._files: dict[Path, _CountingFile] = {}
        self._header_bytes = 0
        found: list[tuple[PyramidLevel, _DicomInstance]] = []
        for path in paths:
            header = read_dicom_header(path)
            # read_dicom_header reads the dataset and walks the fragment items in front of the
            # pixel data: count that as read (an upper bound of what it touched).
            self._header_bytes += header.pixel_data.element_offset + 8 * (
                len(header.pixel_data.fragments) + 2
            )
            ds = header.dataset
            if str(ds.get("SOPClassUID", "")) != _WSI_SOP_CLASS:
                raise UnsupportedFormatError("a DICOM instance is not a VL WSI image")
            image_type = [str(value).upper() for value in ds.get("ImageType", [])]
            if len(image_type) < 3 or image_type[2] != "VOLUME":
                continue  # LABEL, OVERVIEW and THUMBNAIL instances are no pyramid level
            if str(ds.get("DimensionOrganizationType", "TILED_FULL")).upper() != "TILED_FULL":
                raise UnsupportedFormatError("QC reads TILED_FULL DICOM instances only")
            if int(ds.get("TotalPixelMatrixFocalPlanes", 1)) != 1:
                raise UnsupportedFormatError("QC reads single-focal-plane DICOM instances only")
            width, height = int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows)
            tile_w, tile_h = int(ds.Columns), int(ds.Rows)
            _check_level_shape(width, height, tile_w, tile_h)
            samples = int(ds.get("SamplesPerPixel", 3))
            if int(ds.get("BitsAllocated", 8)) != 8 or samples not in (1, 3):
                raise UnsupportedFormatError("QC reads 8-bit RGB or greyscale DICOM only")
            frames = int(ds.get("NumberOfFrames", 1))
            if frames < math.ceil(width / tile_w) * math.ceil(height / tile_h):
                raise CorruptSlideError("a DICOM instance has fewer frames than its tile grid")
            ts = str(ds.file_meta.TransferSyntaxUID)
            layout = header.pixel_data
            if ts in _NATIVE:
                if layout.encapsulated:
                    raise CorruptSlideError("native pixel data stored encapsulated")
                frame_bytes = tile_w * tile_h * samples
                if layout.fragments[0][1] < frames * frame_bytes:
                    raise TruncatedSlideError("native pixel data shorter than its frames")
                native_offset = layout.fragments[0][0]
            elif ts == _JPEG_BASELINE or ts in _JPEG_2000:
                if len(layout.fragments) != frames:
                    raise UnsupportedFormatError("QC reads one fragment per DICOM frame only")
                frame_bytes = native_offset = 0
            else:
                raise UnsupportedFormatError("a DICOM transfer syntax QC does not decode")
            mpp = _dicom_mpp(ds)
            instance = _DicomInstance(
                path,
                ts,
                layout.fragments,
                native_offset,
                frame_bytes,
                samples,
                str(ds.get("PhotometricInterpretation", "")).upper(),
            )
            level = PyramidLevel(-1, width, height, mpp[0], mpp[1], 1.0, tile_w, tile_h)
            found.append((level, instance))
        if not found:
            raise PyramidLevelError("none of the DICOM files is a VOLUME level")
        found.sort(key=lambda item: -item[0].width_px)
        self._levels = _number_levels([level for level, _ in found], all_levels)
        self._instances = tuple(instance for _, instance in found)
        self._total = (
            total_bytes if total_bytes is not None else sum(p.stat().st_size for p in paths)
        )

    @property
    def total_bytes(self) -> int:
        return self._total

    @property
    def bytes_read(self) -> int:
        return self._header_bytes + sum(f.bytes_read for f in self._files.values())

    def _file_of(self, instance: _DicomInstance) -> _CountingFile:
        if instance.path not in self._files:
            self._files[instance.path] = _CountingFile(instance.path)
        return self._files[instance.path]

    def _tile(self, index: int, column: int, row: int, grey: bool = False) -> npt.NDArray[np.uint8]:
        position = next(i for i, level in enumerate(self._levels) if level.index == index)
        level, instance = self._levels[position], self._instances[position]
        frame = row * math.ceil(level.width_px / level.tile_width_px) + column
        file = self._file_of(instance)
        if instance.transfer_syntax in _NATIVE:
            data = file.read_exact(
                instance.native_offset + frame * instance.frame_bytes, instance.frame_bytes
            )
            pixels = np.frombuffer(data, dtype=np.uint8).reshape(
                level.tile_height_px, level.tile_width_px, instance.samples
            )
            rgb = _as_rgb(pixels if instance.samples == 3 else pixels[:, :, 0])
            return _luma(rgb) if grey else rgb
        offset, length = instance.fragments[frame]
        if length > DEFAULT_LIMITS.max_tile_decoded_bytes:
            raise SlideBombError("a DICOM frame exceeds MAX_TILE_DECODED_BYTES")
        data = file.read_exact(offset, length)
        try:
            if (
                instance.transfer_syntax == _JPEG_BASELINE
                and grey
                and instance.photometric
                in (
                    "YBR_FULL_422",
                    "YBR_FULL",
                )
            ):
                # PS3.3 §C.7.6.3.1.2: Y of YBR_FULL is the luminance; decode it alone.
                return _as_grey(imagecodecs.jpeg8_decode(data, outcolorspace="GRAY"))
            if instance.transfer_syntax == _JPEG_BASELINE:
                # PS3.5 §8.2.1: YBR_FULL_422 baseline JPEG; libjpeg-turbo returns RGB.
                decoded = imagecodecs.jpeg8_decode(data)
            else:
                decoded = imagecodecs.jpeg2k_decode(data)
        except Exception as exc:  # codecs raise their own types; any failure is a bad frame
            raise CorruptSlideError("a DICOM frame does not decode") from exc
        rgb = _as_rgb(np.asarray(decoded))
        return _luma(rgb) if grey else rgb

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()

    def __enter__(self) -> DicomPyramid:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _dicom_mpp(ds: pydicom.Dataset) -> tuple[float | None, float | None]:
    """PixelSpacing (PS3.3 §C.8.12.4: row spacing, column spacing in mm) in micrometres."""
    try:
        measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        row_mm, column_mm = (float(value) for value in measures.PixelSpacing)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None, None
    if row_mm <= 0 or column_mm <= 0:
        return None, None
    return column_mm / _MM_PER_UM, row_mm / _MM_PER_UM


def _number_levels(
    given: Sequence[PyramidLevel], all_levels: Sequence[PyramidLevel] | None
) -> tuple[PyramidLevel, ...]:
    """Index and downsample of each given level: the slide's own when ``all_levels`` (the whole
    pyramid's metadata) is known, else counted from the largest level given."""
    if all_levels is None:
        base_width = given[0].width_px
        return tuple(
            PyramidLevel(
                index,
                level.width_px,
                level.height_px,
                level.mpp_x,
                level.mpp_y,
                base_width / level.width_px,
                level.tile_width_px,
                level.tile_height_px,
            )
            for index, level in enumerate(given)
        )
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


def read_dicom_levels(paths: Sequence[Path]) -> tuple[PyramidLevel, ...]:
    """Level metadata of DICOM instances (headers only), for :func:`levels_needed`."""
    pyramid = DicomPyramid(paths)
    pyramid.close()
    return tuple(pyramid.levels)


def open_dicom_pyramid(
    paths: Sequence[Path],
    total_bytes: int | None = None,
    all_levels: Sequence[PyramidLevel] | None = None,
) -> DicomPyramid:
    """Open DICOM WSI instance files for QC; LABEL/OVERVIEW/THUMBNAIL instances are ignored.

    ``paths`` may be only some levels' files (those :func:`levels_needed` chose). Then pass
    ``total_bytes`` (the whole series' size, so the fraction read stays honest) and
    ``all_levels`` (the whole pyramid's level metadata, so each file keeps the slide's level
    index and downsample); without ``all_levels`` the given files are numbered largest first.
    """
    return DicomPyramid(paths, total_bytes, all_levels)

"""Pyramidal BigTIFF, OME-TIFF flavour, that OpenSlide and tiffslide both read in full.

Layout, and why: OME-TIFF (OME data model 2016-06, "sub-resolutions") keeps the reduced levels
in the SubIFDs of the full-resolution IFD, which is what tifffile and tiffslide read as the
pyramid. OpenSlide's generic-tiff reader ignores SubIFDs and takes the *top-level* IFD chain as
the pyramid. So level 0 is written with SubIFDs pointing at levels 1..n (tifffile chains
SubIFDs to each other), and after tifffile closes the file, level 0's next-IFD pointer is set
to the first SubIFD: both readers then walk the same IFDs, OpenSlide through the top-level
chain and tifffile/tiffslide through the SubIFD tree (the OME-XML references IFD 0 only, so
tifffile's OME series is unchanged). Every level is tiled, NewSubfileType 1 for the reduced
ones, with resolution tags in pixels per centimetre (OpenSlide's and tiffslide's mpp) and the
OME-XML's PhysicalSizeX/Y.

Tiles arrive pre-encoded (tifffile's ``write`` with an iterator of bytes): copied source tiles
as they are (JPEG with tables merged, so no JPEGTables tag), or our JPEG encodes.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from slidestream_wsi.convert.model import Compression

SOFTWARE = "slidestream-wsi convert"
_TIFF_COMPRESSION: dict[Compression, int] = {"jpeg": 7, "none": 1}
_UM_PER_CM = 10_000.0
_BIGTIFF_ENTRY_BYTES = 20
_BIGTIFF_COUNT_BYTES = 8


class PyramidTiffWriter:
    def __init__(
        self,
        path: Path,
        level_count: int,
        mpp: tuple[float, float] | None,
        icc_profile: bytes | None,
        objective_power: float | None,
        document_uuid: uuid.UUID,
    ) -> None:
        self.path = path
        self._uuid = document_uuid
        self._level_count = level_count
        self._mpp = mpp
        self._icc = icc_profile
        self._power = objective_power
        self._written = 0
        self._tif = tifffile.TiffWriter(path, bigtiff=True, ome=True)

    def write_level(
        self,
        width: int,
        height: int,
        tile_width: int,
        tile_height: int,
        compression: Compression,
        photometric: str,
        jpeg_subsampling: tuple[int, int] | None,
        downsample: float,
        tiles: Iterator[bytes],
    ) -> None:
        first = self._written == 0
        kwargs: dict[str, Any] = {
            "shape": (height, width, 3),
            "dtype": np.uint8,
            "tile": (tile_height, tile_width),
            "compression": _TIFF_COMPRESSION[compression],
            "photometric": "ycbcr" if photometric.startswith("YBR") else "rgb",
            "software": SOFTWARE,
        }
        if compression == "jpeg" and photometric.startswith("YBR"):
            kwargs["subsampling"] = jpeg_subsampling or (1, 1)
        elif compression == "jpeg":
            # tifffile tags JPEG as YCbCr unless told the components are RGB (Aperio-style
            # tiles, which carry an Adobe transform-0 marker after the copy).
            kwargs["subsampling"] = (1, 1)
            kwargs["compressionargs"] = {"outcolorspace": "RGB"}
        if self._mpp is not None:
            mpp_x = self._mpp[0] * downsample
            mpp_y = self._mpp[1] * downsample
            kwargs["resolution"] = (_UM_PER_CM / mpp_x, _UM_PER_CM / mpp_y)
            kwargs["resolutionunit"] = "CENTIMETER"
        if first:
            kwargs["subifds"] = self._level_count - 1
            kwargs["metadata"] = self._ome_metadata()
            if self._icc:
                kwargs["iccprofile"] = self._icc
        else:
            kwargs["subfiletype"] = 1
        self._tif.write(tiles, **kwargs)
        self._written += 1

    def _ome_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"axes": "YXS", "Name": "slide"}
        if self._mpp is not None:
            metadata.update(
                PhysicalSizeX=self._mpp[0],
                PhysicalSizeXUnit="µm",
                PhysicalSizeY=self._mpp[1],
                PhysicalSizeYUnit="µm",
            )
        return metadata

    def close(self) -> None:
        self._tif.close()
        if self._written != self._level_count:
            raise RuntimeError("pyramid TIFF closed with levels missing")
        _fix_ome_uuid(self.path, self._uuid)
        if self._level_count > 1:
            _chain_subifds_to_top_level(self.path)

    def abort(self) -> None:
        self._tif.close()


def _fix_ome_uuid(path: Path, document_uuid: uuid.UUID) -> None:
    """tifffile stamps the OME document with a time-based UUID (uuid1); replace it, same
    length, with one derived from the slide so that a redelivery writes identical bytes."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags.get(270)
        if tag is None:
            return
        description_at = tag.valueoffset
        description = tif.filehandle
        description.seek(description_at)
        text = description.read(tag.count)
    marker = b'UUID="urn:uuid:'
    found = text.find(marker)
    if found < 0:
        return
    value_at = description_at + found + len(marker)
    with path.open("r+b") as fh:
        fh.seek(value_at)
        fh.write(str(document_uuid).encode("ascii"))


def _chain_subifds_to_top_level(path: Path) -> None:
    """Point IFD 0's next-IFD offset at its first SubIFD (see the module docstring)."""
    with tifffile.TiffFile(path) as tif:
        first = tif.pages.first
        subifds = first.subifds
        if not subifds:
            raise RuntimeError("level 0 without SubIFDs")
        ifd_offset = first.offset
        byteorder = tif.byteorder
    with path.open("r+b") as fh:
        fh.seek(ifd_offset)
        (entries,) = struct.unpack(byteorder + "Q", fh.read(_BIGTIFF_COUNT_BYTES))
        next_at = ifd_offset + _BIGTIFF_COUNT_BYTES + entries * _BIGTIFF_ENTRY_BYTES
        fh.seek(next_at)
        (current,) = struct.unpack(byteorder + "Q", fh.read(8))
        if current not in (0, subifds[0]):
            raise RuntimeError("level 0 already has a next IFD")
        fh.seek(next_at)
        fh.write(struct.pack(byteorder + "Q", subifds[0]))

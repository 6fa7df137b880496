"""How a TIFF level's tiles are coded, and whether the converter can copy them as DICOM frames:
read from the Compression and Photometric tags and the first stored tile's codestream."""

from __future__ import annotations

from collections.abc import Callable

import tifffile

from slidestream_wsi.pyramid.jpeg import (
    J2K_SOC,
    merge_tables,
    parse_j2k_codestream,
    parse_jpeg_frame,
)
from slidestream_wsi.pyramid.level import RGB_SAMPLES, Compression, TileCoding

ReadAt = Callable[[int, int], bytes]
"""Reads ``count`` bytes at ``offset`` of the slide's file (counted, positional)."""

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


def tiff_coding(page: tifffile.TiffPage, read: ReadAt) -> TileCoding:
    code = int(page.compression)
    name: Compression | str = _TIFF_COMPRESSION_NAMES.get(code, f"other:{code}")
    photometric = "ycbcr" if page.photometric == _TIFF_PHOTOMETRIC_YCBCR else "rgb"
    if name == "jpeg":
        return _tiff_jpeg_coding(page, read, photometric)
    if name == "jpeg2000":
        return _tiff_j2k_coding(page, read, code, photometric)
    if name == "none" and page.photometric == _TIFF_PHOTOMETRIC_RGB:
        return TileCoding("none", "rgb", dicom_photometric="RGB")
    return TileCoding(name, photometric)


def _first_tile(page: tifffile.TiffPage, read: ReadAt) -> bytes | None:
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
        if count and offset:
            return read(offset, count)
    return None


def _tiff_jpeg_coding(page: tifffile.TiffPage, read: ReadAt, photometric: str) -> TileCoding:
    tile = _first_tile(page, read)
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
    page: tifffile.TiffPage, read: ReadAt, code: int, photometric: str
) -> TileCoding:
    tile = _first_tile(page, read)
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

"""TIFF parts every vendor layout shares: identity-bearing baseline tags, an EXIF IFD with
planted values, and a JPEG-tiled pyramid writer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_samples.phi import TOKENS
from slidestream_samples.pixels import TILE_PX

ExtraTag = tuple[int, int, int, object, bool]
"""A tifffile ``extratags`` entry: (code, TIFF type, count, value, write once)."""

EXIF_PLACEHOLDER_TAG = 34666
SCAN_DATETIME = "1987:11:23 04:05:06"
"""TIFF DateTime (tag 306) of every planted layout: the planted scan date."""


def common_tags() -> list[ExtraTag]:
    """Baseline tags that carry identity (TIFF 6.0 §8), XMP (700) and IPTC (33723)."""
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>{TOKENS["xmp"]}</dc:creator>'
    xmp += "</x:xmpmeta>"
    iptc = b"\x1c\x02\x50" + struct.pack(">H", len(TOKENS["iptc"])) + TOKENS["iptc"].encode()
    return [
        (269, 2, 0, TOKENS["filename"], True),  # DocumentName
        (315, 2, 0, TOKENS["operator"], True),  # Artist
        (316, 2, 0, TOKENS["hostname"], True),  # HostComputer
        (33432, 2, 0, TOKENS["copyright"], True),  # Copyright
        (700, 1, len(xmp), xmp.encode(), True),  # XMP
        (33723, 7, len(iptc), iptc, True),  # IPTC
        # tifffile refuses to write tag 34665; add_exif_ifd() renames this placeholder to the
        # EXIF IFD pointer (the entry order stays ascending) and points it at an EXIF IFD.
        (EXIF_PLACEHOLDER_TAG, 4, 1, 0, True),
    ]


def add_exif_ifd(path: Path) -> None:
    """Append an EXIF IFD (DateTimeOriginal, BodySerialNumber, UserComment) and point to it."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags[EXIF_PLACEHOLDER_TAG]
        entry_at = tag.offset
        pointer_at = tag.valueoffset
        byteorder = tif.byteorder
    comment = b"ASCII\x00\x00\x00" + TOKENS["exif"].encode()
    date = b"1987:11:23 04:05:06\x00"
    serial = TOKENS["serial"].encode() + b"\x00"
    with path.open("r+b") as fh:
        fh.seek(0, 2)
        start = fh.tell() + (fh.tell() % 2)
        entries = [(0x9003, 2, date), (0x9286, 7, comment), (0xA431, 2, serial)]
        values_at = start + 2 + 12 * len(entries) + 4
        block = struct.pack(byteorder + "H", len(entries))
        values = b""
        for code, ftype, raw in entries:
            block += struct.pack(byteorder + "HHII", code, ftype, len(raw), values_at + len(values))
            values += raw + (b"\x00" if len(raw) % 2 else b"")
        block += struct.pack(byteorder + "I", 0)
        fh.seek(start)
        fh.write(block + values)
        fh.seek(pointer_at)
        fh.write(struct.pack(byteorder + "I", start))
        fh.seek(entry_at)
        fh.write(struct.pack(byteorder + "H", 34665))


def write_levels(
    tif: tifffile.TiffWriter,
    images: list[npt.NDArray[np.uint8]],
    first_description: str,
    first_extratags: list[ExtraTag],
    software: str,
    level_description: str | None = None,
) -> None:
    """The pyramid as top-level JPEG-tiled pages, identity on the first page only."""
    for index, image in enumerate(images):
        tif.write(
            image,
            tile=(TILE_PX, TILE_PX),
            compression="jpeg",
            compressionargs={"level": 95},
            photometric="rgb",
            description=first_description if index == 0 else level_description,
            subfiletype=0 if index == 0 else 1,
            software=software,
            datetime=SCAN_DATETIME,
            metadata=None,
            extratags=first_extratags if index == 0 else [],
        )

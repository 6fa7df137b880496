"""Aperio SVS samples: the planted SVS, and large SVS files made of repeated tiles.

The repeated-tile writers encode four JPEG tiles once and write their bytes over and over:
encoding is the slow part of making a slide, so this makes a multi-gigabyte slide in the time
it takes to write it (the deid and convert benchmarks), and lets a test hide text *inside* a
tile (a JPEG COM segment, which decoders skip), i.e. in bytes that de-identification keeps
untouched by design.
"""

from __future__ import annotations

import functools
import io
import itertools
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_samples.labels import label_image, macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, TILE_PX, levels, tissue
from slidestream_samples.tiff_common import SCAN_DATETIME, add_exif_ifd, common_tags

APERIO_PHI_PAIRS = (
    "AppMag = 20",
    "MPP = 0.4990",
    f"Filename = {TOKENS['filename']}",
    "Date = 11/23/87",
    "Time = 04:05:06",
    f"User = {TOKENS['operator']}",
    f"ScanScope ID = {TOKENS['serial']}",
    f"Barcode = {TOKENS['barcode']}",
)
"""What an Aperio scanner writes, with planted PHI in the fields it uses for identity."""
APERIO_SCANNER_MODEL = "GT450"
"""``ScannerType`` of the SVS sample (a GT 450 writes it; the model, not the unit's ID)."""


def write_aperio_label_and_macro(tif: tifffile.TiffWriter) -> None:
    """Append Aperio's label and macro pages (SVS layout: after the pyramid), text drawn in."""
    tif.write(
        label_image(),
        compression="lzw",
        subfiletype=1,
        description="Aperio Image Library v12.0.15\nlabel 300x100",
        metadata=None,
    )
    tif.write(
        macro_image(),
        compression="jpeg",
        photometric="rgb",
        subfiletype=9,
        description="Aperio Image Library v12.0.15\nmacro 360x120",
        metadata=None,
    )


def make_svs(directory: Path) -> PlantedSlide:
    """Level 0, a stripped thumbnail, levels 1 and 2, label and macro, PHI in every field."""
    path = directory / "planted.svs"
    lv = levels()
    header = (
        "Aperio Image Library v12.0.15\r\n"
        f"{LEVEL0_WIDTH_PX}x{LEVEL0_HEIGHT_PX} [0,0 {LEVEL0_WIDTH_PX}x{LEVEL0_HEIGHT_PX}] "
        "(256x256) JPEG/RGB Q=90"
    )
    pairs = [
        "AppMag = 20",
        "MPP = 0.4990",
        "StripeWidth = 2040",
        f"Filename = {TOKENS['filename']}",
        "Date = 11/23/87",
        "Time = 04:05:06",
        f"User = {TOKENS['operator']}",
        f"ScanScope ID = {TOKENS['serial']}",
        f"ScannerType = {APERIO_SCANNER_MODEL}",
        f"Barcode = {TOKENS['barcode']}",
        f"Title = {TOKENS['free_text']}",
        f"Comment {TOKENS['patient_name']}",
    ]
    description = "|".join([header, *pairs])
    with tifffile.TiffWriter(path) as tif:
        tif.write(
            lv[0],
            tile=(TILE_PX, TILE_PX),
            compression="jpeg",
            compressionargs={"level": 95},
            photometric="rgb",
            description=description,
            software=TOKENS["hostname"],
            datetime=SCAN_DATETIME,
            metadata=None,
            extratags=common_tags(),
        )
        thumb = lv[2][::2, ::2]
        tif.write(
            thumb,
            compression="jpeg",
            photometric="rgb",
            description=f"Aperio Image Library v12.0.15\n{2048}x{1536} -> 256x192 - |{pairs[3]}",
            metadata=None,
        )
        for image in lv[1:]:
            tif.write(
                image,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                compressionargs={"level": 95},
                photometric="rgb",
                description=description,
                metadata=None,
            )
        write_aperio_label_and_macro(tif)
    add_exif_ifd(path)
    return PlantedSlide("svs", path, (path,))


# -- large SVS files from repeated tiles ------------------------------------------------------


@functools.cache
def seed_tiles() -> tuple[bytes, ...]:
    """Four distinct JPEG tiles exactly as tifffile encodes them (YCbCr 4:2:0)."""
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(
            tissue(TILE_PX * 2, TILE_PX * 2, seed=7),
            tile=(TILE_PX, TILE_PX),
            compression="jpeg",
            compressionargs={"level": 90},
            photometric="rgb",
            metadata=None,
        )
    data = buffer.getvalue()
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        return tuple(
            data[offset : offset + count]
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True)
        )


def with_comment(tile: bytes, text: str) -> bytes:
    """The tile with a JPEG COM segment (ITU T.81 B.2.4.5) holding ``text`` after its SOI."""
    payload = text.encode("utf-8")
    return tile[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + tile[2:]


def _segments(count: int, hidden_text: str | None) -> Iterator[bytes]:
    tiles = seed_tiles()
    for index in range(count):
        tile = tiles[index % len(tiles)]
        yield with_comment(tile, hidden_text) if hidden_text and index == 1 else tile


def aperio_description(width_px: int, height_px: int, pairs: tuple[str, ...]) -> str:
    """An ImageDescription as Aperio writes it: a header line, then ``|``-separated pairs."""
    header = (
        "Aperio Image Library v12.0.15\r\n"
        f"{width_px}x{height_px} [0,0 {width_px}x{height_px}] ({TILE_PX}x{TILE_PX}) JPEG/RGB Q=90"
    )
    return "|".join([header, *pairs])


def write_svs(
    path: Path,
    width_px: int,
    height_px: int,
    *,
    pairs: tuple[str, ...] = APERIO_PHI_PAIRS,
    hidden_text: str | None = None,
    levels: int = 2,
    label_and_macro: bool = False,
) -> Path:
    """A tiled-JPEG Aperio SVS (BigTIFF when large) whose tiles repeat :func:`seed_tiles`,
    optionally with Aperio's label (LZW) and macro (JPEG) images at the end, as scanners write
    them (the label shows the planted name, accession and barcode)."""
    description = aperio_description(width_px, height_px, pairs)
    big = width_px * height_px * 3 > 2**31
    with tifffile.TiffWriter(path, bigtiff=big) as tif:
        for level in range(levels):
            w, h = width_px >> level, height_px >> level
            count = -(-w // TILE_PX) * -(-h // TILE_PX)
            tif.write(
                _segments(count, hidden_text if level == 0 else None),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                photometric="rgb",
                description=description if level == 0 else None,
                subfiletype=0 if level == 0 else 1,
                metadata=None,
            )
        if label_and_macro:
            write_aperio_label_and_macro(tif)
    return path


def write_scanner_svs(
    path: Path, width_px: int, height_px: int, thumbnail: npt.NDArray[np.uint8] | None = None
) -> Path:
    """A two-level tiled-JPEG SVS laid out as Aperio scanners write it: level 0, a stripped
    thumbnail page, level 1, label and macro (tifffile and opentile, wsidicomizer's reader,
    find the levels by that order). Tiles repeat :func:`seed_tiles`, so a GiB takes seconds.
    ``thumbnail`` is the thumbnail page's picture (default: tissue, one tile wide)."""
    if thumbnail is None:
        thumbnail = tissue(TILE_PX, TILE_PX * height_px // width_px)
    tiles = seed_tiles()
    description = aperio_description(width_px, height_px, ("AppMag = 20", "MPP = 0.4990"))
    with tifffile.TiffWriter(path, bigtiff=width_px * height_px * 3 > 2**31) as tif:
        for level in range(2):
            w, h = width_px >> level, height_px >> level
            count = -(-w // TILE_PX) * -(-h // TILE_PX)
            tif.write(
                itertools.islice(itertools.cycle(tiles), count),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                photometric="rgb",
                description=description,
                # Aperio levels are NewSubfileType 0; tifffile reads a reduced-image flag in an
                # SVS as a label page.
                subfiletype=0,
                metadata=None,
            )
            if level == 0:
                tif.write(
                    thumbnail,
                    compression="jpeg",
                    photometric="rgb",
                    # One strip no wider than a tile: wsidicomizer 0.31 serves a stripped
                    # thumbnail as one tile of the pyramid's tile size, failing on wider ones.
                    rowsperstrip=thumbnail.shape[0],
                    description=description.replace("\r\n", " -> thumbnail\r\n", 1),
                    metadata=None,
                )
        # tifffile and opentile take the last two pages of an SVS as label and macro.
        write_aperio_label_and_macro(tif)
    return path

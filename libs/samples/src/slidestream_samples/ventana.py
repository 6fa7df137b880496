"""A Ventana BIF: BigTIFF, PHI in the iScan XMP packet of the label directory."""

from __future__ import annotations

from pathlib import Path

import tifffile

from slidestream_samples.labels import macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, TILE_PX, levels
from slidestream_samples.tiff_common import SCAN_DATETIME, common_tags

VENTANA_SOFTWARE = "ScanOutputManager 1.1.0.15854"
"""Software value of Ventana BIF files (tifffile detects BIF by this prefix)."""


VENTANA_SCANNER_MODEL = "VENTANA DP 200"
"""The iScan packet's ``ScannerModel`` in the BIF sample."""


def _ventana_iscan_xmp() -> bytes:
    """The iScan XML packet of directory 0 (OpenSlide copies every attribute to a property)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<iScan BarCode1D="{TOKENS["barcode"]}" BarCode2D="{TOKENS["accession"]}" '
        f'ScanDate="{TOKENS["scan_date"]}" ScanTime="04:05:06" UserName="{TOKENS["operator"]}" '
        f'UnitNumber="{TOKENS["serial"]}" SlideAnnotation="{TOKENS["free_text"]}" '
        f'FileName="{TOKENS["filename"]}" Magnification="20" ScanRes="0.465" Z-layers="1" '
        'Z-spacing="1" FocusMode="1" BuildVersion="3.3.1.1" '
        f'ScannerModel="{VENTANA_SCANNER_MODEL}">'
        f'<AOI0 Left="10" Top="20" Right="2058" Bottom="1556" Name="{TOKENS["patient_id"]}"/>'
        "</iScan>"
    ).encode()


def _ventana_encode_info(cols: int, rows: int) -> bytes:
    """Level-0 EncodeInfo: one AOI of ``cols`` x ``rows`` tiles with two zero-overlap joints.

    Tiles are numbered from 1, serpentine from the bottom row (OpenSlide's ventana driver):
    tile 1 is bottom-left, tile 2 its right neighbour, tile ``2 * cols`` the tile above tile 1.
    """
    joints = (
        f'<TileJointInfo FlagJoined="1" Confidence="90" Direction="RIGHT" Tile1="1" Tile2="2" '
        f'OverlapX="0" OverlapY="0"/>'
        f'<TileJointInfo FlagJoined="1" Confidence="90" Direction="UP" Tile1="1" '
        f'Tile2="{2 * cols}" OverlapX="0" OverlapY="0"/>'
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<EncodeInfo Ver="2">'
        f'<SlideInfo UnitNumber="{TOKENS["serial"]}" Operator="{TOKENS["operator"]}"/>'
        "<SlideStitchInfo>"
        f'<ImageInfo AOIScanned="1" AOIIndex="0" Width="{TILE_PX}" Height="{TILE_PX}" '
        f'NumRows="{rows}" NumCols="{cols}" Pos-X="0" Pos-Y="0">{joints}</ImageInfo>'
        "</SlideStitchInfo>"
        '<AoiOrigin><AOI0 OriginX="0" OriginY="0"/></AoiOrigin>'
        "</EncodeInfo>"
    ).encode()


def make_ventana_bif(directory: Path) -> PlantedSlide:
    """A Ventana BIF: BigTIFF with Label_Image (IFD 0, iScan XMP), Thumbnail, then the levels."""
    path = directory / "planted.bif"
    lv = levels()
    iscan = _ventana_iscan_xmp()
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            macro_image(),
            compression="jpeg",
            photometric="rgb",
            description="Label_Image",
            software=VENTANA_SOFTWARE,
            datetime=SCAN_DATETIME,
            metadata=None,
            extratags=[
                (700, 1, len(iscan), iscan, True),
                *[t for t in common_tags()[:6] if t[0] != 700],
            ],
        )
        tif.write(
            lv[2][::2, ::2].copy(),
            compression="jpeg",
            photometric="rgb",
            description="Thumbnail",
            software=VENTANA_SOFTWARE,
            metadata=None,
        )
        for index, image in enumerate(lv):
            encode = _ventana_encode_info(LEVEL0_WIDTH_PX // TILE_PX, LEVEL0_HEIGHT_PX // TILE_PX)
            tif.write(
                image,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                compressionargs={"level": 95},
                photometric="rgb",
                description=f"level={index} mag={20 // 2**index:g} quality=95",
                software=VENTANA_SOFTWARE,
                metadata=None,
                extratags=[(700, 1, len(encode), encode, True)] if index == 0 else [],
            )
    return PlantedSlide("ventana_bif", path, (path,))

"""A Leica SCN: BigTIFF, the SCN XML (PHI in names, device, user and comment) in IFD 0."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import tifffile

from slidestream_samples.labels import macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, TILE_PX, levels
from slidestream_samples.tiff_common import SCAN_DATETIME, common_tags

LEICA_SCN_NAMESPACE = "http://www.leica-microsystems.com/scn/2010/10/01"
"""The SCN namespace OpenSlide's leica driver requires as the XML default namespace."""
SCN_MAIN_NM_PER_PX = 500
"""Level-0 pixel size of the synthetic SCN main image, in nanometres (0.5 um)."""
SCN_MACRO_NM_PER_PX = 10_000
"""Pixel size of the synthetic SCN macro image, in nanometres."""


def _scn_image(name: str, view: tuple[int, int, int, int], dims: list[tuple[int, int, int]]) -> str:
    """One SCN ``image``: ``view`` is (sizeX, sizeY, offsetX, offsetY) in nm, ``dims`` each
    level's (width, height, IFD)."""
    dimensions = "".join(
        f'<dimension sizeX="{w}" sizeY="{h}" r="{r}" ifd="{ifd}"/>'
        for r, (w, h, ifd) in enumerate(dims)
    )
    return (
        f'<image name="{name}" uuid="urn:uuid:{TOKENS["study"]}">'
        f"<creationDate>{TOKENS['scan_date']}.60Z</creationDate>"
        f'<device model="Leica SCN400;Leica SCN" version="1.5.1.10804 2012/05/10 13:29:07;'
        f'1.5.1.10864" serial="{TOKENS["serial"]}"/>'
        f'<pixels sizeX="{dims[0][0]}" sizeY="{dims[0][1]}">{dimensions}</pixels>'
        f'<view sizeX="{view[0]}" sizeY="{view[1]}" offsetX="{view[2]}" '
        f'offsetY="{view[3]}" spacingZ="0"/>'
        "<scanSettings><objectiveSettings><objective>20</objective></objectiveSettings>"
        "<illuminationSettings><numericalAperture>0.4</numericalAperture>"
        "<illuminationSource>brightfield</illuminationSource></illuminationSettings>"
        f"<user>{TOKENS['operator']}</user></scanSettings>"
        f"<comment>{TOKENS['free_text']}</comment>"
        "</image>"
    )


def _scn_xml(macro_shape: tuple[int, int]) -> str:
    """The SCN collection: a macro image covering the slide, and the main image (3 levels)."""
    macro_h, macro_w = macro_shape
    collection_w = macro_w * SCN_MACRO_NM_PER_PX
    collection_h = macro_h * SCN_MACRO_NM_PER_PX
    main_view = (
        LEVEL0_WIDTH_PX * SCN_MAIN_NM_PER_PX,
        LEVEL0_HEIGHT_PX * SCN_MAIN_NM_PER_PX,
        SCN_MACRO_NM_PER_PX * 16,
        SCN_MACRO_NM_PER_PX * 16,
    )
    main_dims = [(LEVEL0_WIDTH_PX >> i, LEVEL0_HEIGHT_PX >> i, 1 + i) for i in range(3)]
    macro_view = (collection_w, collection_h, 0, 0)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<scn xmlns="{LEICA_SCN_NAMESPACE}">'
        f'<collection name="{TOKENS["filename"]}" uuid="urn:uuid:{TOKENS["accession"]}" '
        f'sizeX="{collection_w}" sizeY="{collection_h}">'
        # The 2010/10/01 namespace stores the barcode Base64-encoded (OpenSlide decodes it).
        f"<barcode>{base64.b64encode(TOKENS['barcode'].encode()).decode()}</barcode>"
        + _scn_image(TOKENS["patient_name"], macro_view, [(macro_w, macro_h, 0)])
        + _scn_image(TOKENS["specimen"], main_view, main_dims)
        + "</collection></scn>"
    )


def make_leica_scn(directory: Path) -> PlantedSlide:
    """A Leica SCN: BigTIFF, IFD 0 is the (tiled) macro carrying the SCN XML, then the levels."""
    path = directory / "planted.scn"
    lv = levels()
    macro = macro_image()
    # The macro is tiled: OpenSlide requires directory 0 of a Leica slide to be tiled.
    macro_tiles = np.full((128, 384, 3), 255, dtype=np.uint8)
    macro_tiles[: macro.shape[0], : macro.shape[1]] = macro
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            macro_tiles,
            tile=(128, 128),
            compression="jpeg",
            photometric="rgb",
            description=_scn_xml((macro_tiles.shape[0], macro_tiles.shape[1])),
            software=f"Leica SCN {TOKENS['hostname']}",
            datetime=SCAN_DATETIME,
            metadata=None,
            extratags=common_tags()[:6],
        )
        for image in lv:
            tif.write(
                image,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                compressionargs={"level": 95},
                photometric="rgb",
                resolution=(1e4 / (SCN_MAIN_NM_PER_PX / 1000), 1e4 / (SCN_MAIN_NM_PER_PX / 1000)),
                resolutionunit="CENTIMETER",
                metadata=None,
            )
    return PlantedSlide("leica_scn", path, (path,))

"""A generic pyramidal TIFF (no vendor): PHI in baseline tags, EXIF, XMP and IPTC."""

from __future__ import annotations

from pathlib import Path

import tifffile

from slidestream_samples.labels import label_image, macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import levels
from slidestream_samples.tiff_common import add_exif_ifd, common_tags, write_levels

GENERIC_SCANNER_MODEL = "Slidescan 3000"
"""The Model tag (272) of the generic TIFF: a product name, kept by de-identification."""


def make_generic_tiff(directory: Path) -> PlantedSlide:
    path = directory / "planted.tiff"
    lv = levels()
    with tifffile.TiffWriter(path) as tif:
        write_levels(
            tif,
            lv,
            TOKENS["free_text"],
            [*common_tags(), (272, 2, 0, GENERIC_SCANNER_MODEL, True)],
            f"ScanSoft on {TOKENS['hostname']}",
        )
        tif.write(
            label_image(), compression="lzw", subfiletype=1, description="label", metadata=None
        )
        tif.write(
            macro_image(),
            compression="jpeg",
            photometric="rgb",
            subfiletype=1,
            description="macro",
            metadata=None,
        )
    add_exif_ifd(path)
    return PlantedSlide("generic_tiff", path, (path,))

"""A Hamamatsu NDPI-like file: each level one JPEG strip with restart markers and McuStarts."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tifffile
from PIL import Image

from slidestream_samples.labels import macro_image
from slidestream_samples.phi import TOKENS, PlantedSlide
from slidestream_samples.pixels import TILE_PX, levels
from slidestream_samples.tiff_common import SCAN_DATETIME, ExtraTag, common_tags

NDPI_LEVEL0_MPP_UM = 0.4536
"""Level-0 spacing of the NDPI sample: a 20x Hamamatsu scan."""


def _jpeg_with_restarts(
    image: npt.NDArray[np.uint8], interval_mcus: int
) -> tuple[bytes, list[int]]:
    """A JPEG with restart markers every ``interval_mcus`` MCUs, and each interval's start."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, "JPEG", quality=90, subsampling=2, restart_marker_blocks=interval_mcus
    )
    data = buffer.getvalue()
    sos = data.index(b"\xff\xda")
    (sos_length,) = struct.unpack(">H", data[sos + 2 : sos + 4])
    starts = [sos + 2 + sos_length]
    position = starts[0]
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            break
        marker = data[position + 1]
        if 0xD0 <= marker <= 0xD7:
            starts.append(position + 2)
        position += 2
    return data, starts


NDPI_SCANNER_MODEL = "C13220"
"""The Model tag (272) of the NDPI sample: NanoZoomer files state their model only there."""


def _ndpi_tags(magnification: float, extra: bool) -> list[ExtraTag]:
    """Hamamatsu's private tags (65420 on); ``extra`` adds those that carry identity."""
    tags: list[ExtraTag] = [
        (65420, 4, 1, 1, True),  # FileFormat
        (65421, 11, 1, magnification, True),  # Magnification
        (65422, 9, 1, 0, True),
        (65423, 9, 1, 0, True),
        (65424, 9, 1, 0, True),
    ]
    if extra:
        tags += [
            (65427, 2, 0, TOKENS["barcode"], True),  # SlideLabel
            (65442, 2, 0, TOKENS["serial"], True),  # ScannerSerialNumber
            (
                65449,
                2,
                0,
                f"Reference={TOKENS['accession']}\r\nUser={TOKENS['operator']}",
                True,
            ),  # Comments / property map
            (65428, 2, 0, TOKENS["study"], True),  # AuthCode
        ]
    return tags


def make_ndpi(directory: Path) -> PlantedSlide:
    """An NDPI-like file: levels are single JPEG strips with restart markers and McuStarts."""
    path = directory / "planted_ndpi.tiff"
    lv = levels()
    with tifffile.TiffWriter(path) as tif:
        for index, image in enumerate(lv):
            data, starts = _jpeg_with_restarts(image, (TILE_PX * 2) // 16)
            height, width = image.shape[:2]
            tif.write(
                iter([data]),
                shape=(height, width, 3),
                dtype=np.uint8,
                photometric="ycbcr",
                compression=7,
                rowsperstrip=height,
                subsampling=(2, 2),
                # Hamamatsu writes the spacing as resolution tags in pixels per centimetre.
                resolution=(1e4 / (NDPI_LEVEL0_MPP_UM * 2**index),) * 2,
                resolutionunit="CENTIMETER",
                software=f"NDP.scan 3.4 {TOKENS['hostname']}",
                datetime=SCAN_DATETIME,
                metadata=None,
                extratags=[
                    (271, 2, 0, "Hamamatsu", True),
                    (272, 2, 0, NDPI_SCANNER_MODEL, True),
                    (65426, 4, len(starts), starts, True),  # McuStarts
                    *_ndpi_tags(20.0 / (2**index), extra=index == 0),
                    *(common_tags()[:6] if index == 0 else []),
                ],
            )
        macro = macro_image()
        tif.write(
            macro,
            compression="jpeg",
            photometric="rgb",
            metadata=None,
            extratags=[(271, 2, 0, "Hamamatsu", True), *_ndpi_tags(-1.0, extra=True)],
        )
        tif.write(
            macro[:, :200].copy(),
            compression="jpeg",
            photometric="rgb",
            metadata=None,
            extratags=[(271, 2, 0, "Hamamatsu", True), *_ndpi_tags(-2.0, extra=False)],
        )
    return PlantedSlide("ndpi", path, (path,))

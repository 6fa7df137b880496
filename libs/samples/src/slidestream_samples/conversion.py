"""PHI-free pyramids for the converter's tests: any codec, tiled or stripped, gaps in levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from slidestream_samples.pixels import LEVEL0_HEIGHT_PX, LEVEL0_WIDTH_PX, TILE_PX, tissue

CONVERT_MPP_UM = 0.5
"""Pixel spacing of the conversion samples (resolution tags in pixels per centimetre)."""


def make_conversion_tiff(
    directory: Path,
    name: str,
    *,
    compression: str = "jpeg",
    tile_px: int | None = TILE_PX,
    size_px: tuple[int, int] = (LEVEL0_WIDTH_PX, LEVEL0_HEIGHT_PX),
    downsamples: tuple[int, ...] = (1, 2, 4),
    strip_rows: int = 64,
) -> Path:
    """A PHI-free, already de-identified-looking RGB pyramid for the converter's tests.

    ``compression`` is any tifffile codec name (``jpeg``, ``jpeg2000``, ``none``, ``zlib``...);
    ``tile_px=None`` writes stripes of ``strip_rows`` rows instead of tiles; ``downsamples``
    picks which levels exist (``(1,)`` leaves the whole pyramid to be generated, ``(1, 4)``
    leaves a gap); odd ``size_px`` give partial edge tiles.
    """
    path = directory / name
    width, height = size_px
    level0 = tissue(width, height, seed=3)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for index, factor in enumerate(downsamples):
            image = np.ascontiguousarray(level0[::factor, ::factor])
            args: dict[str, object] = {
                "compression": None if compression == "none" else compression,
                "photometric": "rgb",
                "subfiletype": 0 if index == 0 else 1,
                "resolution": (1e4 / (CONVERT_MPP_UM * factor),) * 2,
                "resolutionunit": "CENTIMETER",
                "metadata": None,
            }
            if tile_px is None:
                args["rowsperstrip"] = strip_rows
            else:
                args["tile"] = (tile_px, tile_px)
            if compression == "jpeg":
                args["compressionargs"] = {"level": 90}
            tif.write(image, **args)  # type: ignore[arg-type]
    return path

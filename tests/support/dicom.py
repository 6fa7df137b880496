"""The inputs of conversion's DICOM dataset builders, for tests that build one dataset alone."""

from __future__ import annotations

from slidestream_wsi.convert import DicomIdentity
from slidestream_wsi.convert.dicom_out import InstanceGeometry, SlideDescription
from slidestream_wsi.convert.icc import srgb_profile


def slide_description(
    identity: DicomIdentity,
    *,
    mpp: tuple[float, float] | None = (0.5, 0.5),
    level0_size: tuple[int, int] = (1024, 768),
    options_key: str = "test",
) -> SlideDescription:
    """A lossy 20x RGB slide with an sRGB profile."""
    return SlideDescription(
        identity=identity,
        mpp=mpp,
        level0_size=level0_size,
        objective_power=20.0,
        icc_profile=srgb_profile(),
        color_space="SRGB",
        options_key=options_key,
        source_lossy=True,
    )


def jpeg_volume(
    name: str,
    size: tuple[int, int],
    *,
    tile_px: int = 256,
    level: int = 0,
) -> InstanceGeometry:
    """A JPEG VOLUME instance of ``size``: level 0 as scanned, any other level generated."""
    return InstanceGeometry(
        name=name,
        flavor="VOLUME",
        width=size[0],
        height=size[1],
        tile_width=tile_px,
        tile_height=tile_px,
        compression="jpeg",
        photometric="YBR_FULL_422",
        instance_number=level + 1,
        derived=level > 0,
        downsample=float(2**level),
    )

"""One spacing rule, one geometry: every caller of the slide reader sees the same levels.

Callers: the converter (``open_source``: level-0 spacing and levels), QC (``open_*_pyramid``:
per-level geometry), de-identification (``describe_slide`` for its event, ``validate_slide`` for
its levels) and, as the outside reference, OpenSlide's ``openslide.mpp-x|y``.
"""

from __future__ import annotations

from pathlib import Path

import openslide
import pytest

from slidestream_wsi.pyramid import PyramidLevel, describe_slide, open_source
from slidestream_wsi.qc import open_dicom_pyramid, open_tiff_pyramid
from slidestream_wsi.validate import validate_slide

EXPECTED_MPP_UM: dict[str, float | None] = {
    "svs": 0.499,  # Aperio MPP = in the ImageDescription
    "generic_tiff": None,  # no resolution unit: no spacing
    "ome_tiff": 0.25,  # OME-XML PhysicalSizeX/Y
    "ndpi": 0.4536,  # resolution tags in pixels per centimetre
    "philips_tiff": 0.25,  # DICOM_PIXEL_SPACING of the first representation
    "philips_tiff_4x": 0.25,
    "dicom": 0.25,  # PixelSpacing of the Pixel Measures
    "leica_scn": 0.5,  # the main image's view (nm) over its pixels in the SCN XML
    "ventana_bif": 0.465,  # iScan XMP ScanRes
    "small.svs": 0.499,
    "boxes.tiff": 352.7777798,  # 72 dpi resolution tags: OpenSlide reports it too
    "boxes_0.dcm": 0.499,
}
OPENSLIDE_DISAGREES = {
    # OpenSlide reads neither OME-XML nor a Philips spacing given only per representation.
    "ome_tiff": "OpenSlide does not parse OME-XML",
    "philips_tiff": "OpenSlide reads DICOM_PIXEL_SPACING of the image, not its representations",
    "philips_tiff_4x": "as philips_tiff",
}
OPENSLIDE_SLIDES = ("small.svs", "boxes.tiff", "boxes_0.dcm")


@pytest.fixture(scope="module")
def every_layout(planted: dict[str, object], openslide_fixtures: Path) -> dict[str, list[Path]]:
    layouts = {name: list(slide.files) for name, slide in planted.items()}  # type: ignore[attr-defined]
    layouts.update({name: [openslide_fixtures / name] for name in OPENSLIDE_SLIDES})
    return layouts


def _qc_levels(files: list[Path], is_dicom: bool) -> tuple[PyramidLevel, ...]:
    opener = open_dicom_pyramid(files) if is_dicom else open_tiff_pyramid(files[0])
    with opener as pyramid:
        return tuple(pyramid.levels)


@pytest.mark.parametrize("name", sorted(EXPECTED_MPP_UM))
def test_every_caller_sees_the_same_spacing_levels_and_tiles(
    name: str, every_layout: dict[str, list[Path]]
) -> None:
    files = every_layout[name]
    with open_source(files) as slide:
        geometry = slide.geometry
        converter_levels = [
            (level.width, level.height, level.tile_width, level.tile_height)
            for level in slide.levels
        ]
        level0_mpp, power, slide_format = slide.mpp, slide.objective_power, slide.format
        is_dicom = slide.format == "dicom_wsi"
    expected = EXPECTED_MPP_UM[name]
    if expected is None:
        assert level0_mpp is None
    else:
        assert level0_mpp == pytest.approx((expected, expected), rel=1e-6)
    qc_levels = _qc_levels(files, is_dicom=is_dicom)
    assert qc_levels == geometry
    described = describe_slide(files[0])
    assert (described.mpp, described.objective_power, described.format) == (
        level0_mpp,
        power,
        slide_format,
    )
    if not is_dicom:  # a DICOM instance validates alone: one level
        validated = validate_slide(files[0])
        assert [
            (level.width_px, level.height_px, level.tile_width_px, level.tile_height_px)
            for level in validated.levels
        ] == converter_levels
    assert converter_levels == [
        (level.width_px, level.height_px, level.tile_width_px, level.tile_height_px)
        for level in qc_levels
    ]
    for level in qc_levels:
        if expected is None:
            assert level.mpp_x is None and level.mpp_y is None
        else:
            # Each level's spacing is level 0's scaled by its size (DICOM: its own, the same).
            assert level.mpp_x == pytest.approx(expected * level.downsample, rel=1e-2)


@pytest.mark.parametrize("name", sorted(set(EXPECTED_MPP_UM) - set(OPENSLIDE_DISAGREES)))
def test_spacing_is_what_openslide_reports(name: str, every_layout: dict[str, list[Path]]) -> None:
    files = every_layout[name]
    with open_source(files) as slide:
        mpp, power = slide.mpp, slide.objective_power
    with openslide.OpenSlide(files[0]) as reference:
        properties = reference.properties
        expected_x = properties.get(openslide.PROPERTY_NAME_MPP_X)
        expected_y = properties.get(openslide.PROPERTY_NAME_MPP_Y)
        expected_power = properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
    if expected_x is None:
        assert mpp is None
    else:
        assert mpp == pytest.approx((float(expected_x), float(expected_y)), rel=1e-6)
    if expected_power is not None:
        assert power == pytest.approx(float(expected_power))


def test_an_implausible_spacing_is_no_spacing(tmp_path: Path) -> None:
    import numpy as np
    import tifffile

    path = tmp_path / "one-dpi.tif"
    # 1 pixel per centimetre is 10 000 µm/px: no microscope level has that.
    tifffile.imwrite(
        path,
        np.zeros((64, 64, 3), np.uint8),
        tile=(32, 32),
        photometric="rgb",
        resolution=(1.0, 1.0),
        resolutionunit="CENTIMETER",
    )
    with open_source([path]) as slide:
        assert slide.mpp is None
        assert all(level.mpp_x is None for level in slide.geometry)

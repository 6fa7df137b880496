"""One tile size per output pyramid: readers (wsidicom, a viewer's tile grid) read levels tiled
unlike the base as another pyramid. A source tiled 240 px (older Aperio scanners) keeps its tiles
and the levels made below them match; a single-frame source is re-tiled."""

from __future__ import annotations

from pathlib import Path

import pytest
import tifffile
import wsidicom  # type: ignore[import-untyped]  # no py.typed marker

from slidestream_samples.pixels import tissue
from slidestream_wsi.convert import ConversionOptions, DicomIdentity, convert_slide
from slidestream_wsi.errors import MissingPixelSpacingError
from tests.support.single_frame_dicom import write_single_frame_dicom

IDENTITY = DicomIdentity(slide_id="00000000-0000-0000-0000-0000000000f1")
NO_DCIODVFY = ConversionOptions(run_dciodvfy=False)
PX_PER_CM_AT_025_UM = 40_000


def write_tiff(path: Path, tiles_px: tuple[int, int]) -> Path:
    """A 2048 x 1536 pyramidal TIFF at 0.25 µm/px: level 0 and a 4x level, each with its tiles."""
    pixels = tissue(2048, 1536, seed=3)
    with tifffile.TiffWriter(path) as tif:
        for level, side in enumerate(tiles_px):
            tif.write(
                pixels[:: 4**level, :: 4**level].copy(),
                tile=(side, side),
                compression="jpeg",
                photometric="rgb",
                resolution=(PX_PER_CM_AT_025_UM / 4**level,) * 2,
                resolutionunit="CENTIMETER",
                subfiletype=1 if level else 0,
                metadata=None,
            )
    return path


def dicom_levels(out: Path) -> list[tuple[int, int]]:
    files = sorted(out.glob("level-*.dcm"))
    with wsidicom.WsiDicom.open(files) as wsi:
        return [(int(level.size.width), int(level.tile_size.width)) for level in wsi.levels]


def test_240_px_tiles_are_kept_and_every_level_is_tiled_alike(tmp_path: Path) -> None:
    source = write_tiff(tmp_path / "aperio-like.tiff", (240, 240))
    out = tmp_path / "out"
    out.mkdir()

    result = convert_slide([source], out, IDENTITY, NO_DCIODVFY)

    assert {level.tile_size_px for level in result.levels} == {240}
    assert [level.lossless_copy for level in result.levels][::2] == [True, True, False]
    assert dicom_levels(out) == [(2048, 240), (1024, 240), (512, 240), (256, 240), (128, 240)]
    assert "tiles of 240 px throughout, as the source's level 0" in result.warnings


def test_a_level_tiled_unlike_level_0_is_re_encoded(tmp_path: Path) -> None:
    source = write_tiff(tmp_path / "mixed.tiff", (240, 256))
    out = tmp_path / "out"
    out.mkdir()

    result = convert_slide([source], out, IDENTITY, NO_DCIODVFY)

    by_width = {level.width_px: level for level in result.levels}
    assert by_width[2048].lossless_copy and not by_width[512].lossless_copy
    assert {width for width, tile in dicom_levels(out) if tile == 240} == set(by_width)


def test_a_single_frame_dicom_without_spacing_converts_once_given_one(tmp_path: Path) -> None:
    source = write_single_frame_dicom(tmp_path / "work", tmp_path / "single.dcm")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MissingPixelSpacingError):
        convert_slide([source], out, IDENTITY, NO_DCIODVFY)

    given = ConversionOptions(run_dciodvfy=False, assumed_mpp_um=0.5)
    result = convert_slide([source], out, IDENTITY, given)

    assert [(level.width_px, level.mpp_x) for level in result.levels] == [
        (1024, 0.5),
        (512, 1.0),
        (256, 2.0),
    ]
    assert dicom_levels(out) == [(1024, 256), (512, 256), (256, 256)]

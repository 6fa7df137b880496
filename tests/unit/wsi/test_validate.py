from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
import tifffile

from slidestream_wsi.errors import (
    CorruptSlideError,
    SlideBombError,
    SlideError,
    TruncatedSlideError,
)
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.validate import validate_slide
from tests.support.hostile_files import tiny_tiff

LEVELS = [(2048, 1536), (1024, 768), (512, 384)]


@pytest.mark.parametrize("layout", ["svs", "generic_tiff", "ome_tiff", "ndpi", "philips_tiff"])
def test_planted_layouts_validate(planted: dict[str, object], layout: str) -> None:
    info = validate_slide(planted[layout].path)  # type: ignore[attr-defined]
    assert [(lv.width_px, lv.height_px) for lv in info.levels] == LEVELS
    assert {a.role for a in info.associated_images} & {"label", "macro", "overview"}


def test_dicom_instances_validate(planted: dict[str, object]) -> None:
    files = planted["dicom"].files  # type: ignore[attr-defined]
    volume = validate_slide(files[0])
    assert (volume.width_px, volume.height_px) == LEVELS[0]
    label = validate_slide(files[2])
    assert [a.role for a in label.associated_images] == ["label"]


def test_declared_dimension_bomb(tmp_path: Path) -> None:
    with pytest.raises(SlideBombError):
        validate_slide(tiny_tiff(tmp_path / "huge.tiff", 4_000_000, 4_000_000))


def test_declared_tile_count_bomb(tmp_path: Path) -> None:
    with pytest.raises(SlideBombError):
        validate_slide(tiny_tiff(tmp_path / "tiles.tiff", 200_000, 200_000, tile_px=16))


def test_tightened_limits_apply(planted: dict[str, object]) -> None:
    svs = planted["svs"].path  # type: ignore[attr-defined]
    with pytest.raises(SlideBombError):
        validate_slide(svs, SlideLimits(max_image_dimension_px=1024))
    with pytest.raises(SlideBombError):
        validate_slide(svs, SlideLimits(max_tile_count=10))
    with pytest.raises(SlideBombError):
        validate_slide(svs, SlideLimits(max_ifd_count=2))
    with pytest.raises(SlideBombError):
        validate_slide(svs, SlideLimits(open_time_budget_s=0.0))


def test_ifd_loop_is_refused(planted: dict[str, object], tmp_path: Path) -> None:
    looped = tmp_path / "loop.tiff"
    shutil.copyfile(planted["generic_tiff"].path, looped)  # type: ignore[attr-defined]
    with tifffile.TiffFile(looped) as tif:
        first = tif.pages.first.offset
        last = tif.pages[-1].offset
    with looped.open("r+b") as fh:
        fh.seek(last)
        (count,) = struct.unpack("<H", fh.read(2))
        fh.seek(last + 2 + 12 * count)
        fh.write(struct.pack("<I", first))
    with pytest.raises(CorruptSlideError):
        validate_slide(looped)


def test_truncated_slide_is_refused(planted: dict[str, object], tmp_path: Path) -> None:
    source = planted["svs"].path  # type: ignore[attr-defined]
    truncated = tmp_path / "truncated.svs"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(TruncatedSlideError):
        validate_slide(truncated)


def test_truncated_dicom_is_refused(planted: dict[str, object], tmp_path: Path) -> None:
    source = planted["dicom"].files[0]  # type: ignore[attr-defined]
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(TruncatedSlideError):
        validate_slide(truncated)


def test_openslide_fixtures(openslide_fixtures: Path) -> None:
    assert validate_slide(openslide_fixtures / "small.svs").width_px == 16
    assert len(validate_slide(openslide_fixtures / "boxes.tiff").levels) == 4
    assert validate_slide(openslide_fixtures / "boxes_0.dcm").width_px == 16
    # unreadable.svs opens but its first tile does not decode; unopenable.tiff has an
    # unknown compression: both are refused with typed errors.
    for name in ("unreadable.svs", "unopenable.tiff"):
        with pytest.raises(CorruptSlideError):
            validate_slide(openslide_fixtures / name)


def test_every_refusal_is_a_slide_error() -> None:
    for error in (CorruptSlideError, SlideBombError, TruncatedSlideError):
        assert issubclass(error, SlideError)

"""The conversion's fast paths keep its guarantees: row reads into a reused buffer return the
stored bytes, the copy pass's runs cover every tile once, row by row, in bounded sizes, table
merging is unchanged, a tile with another header still fails the copy check, a tile that does
not decode while the levels below are generated on their own thread still fails the slide, and
the interpreter's GIL switch interval is restored."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from slidestream_samples.aperio import write_svs
from slidestream_wsi.convert import ConversionOptions, DicomIdentity, convert_slide
from slidestream_wsi.convert.copy_pass import CopiedJpegCheck
from slidestream_wsi.convert.gil import GIL_SWITCH_INTERVAL_S
from slidestream_wsi.convert.pixels import encode_jpeg
from slidestream_wsi.convert.verify import reopen_readers
from slidestream_wsi.errors import ConformanceError, CorruptSlideError
from slidestream_wsi.pyramid import open_source
from slidestream_wsi.pyramid import tiff as tiff_reader
from slidestream_wsi.pyramid.jpeg import merge_tables, with_adobe_rgb_marker

NO_GATE = ConversionOptions(
    outputs=frozenset({"dicom"}), run_dciodvfy=False, reopen_check=False, assumed_mpp_um=0.5
)


def test_row_views_are_the_stored_tiles(tmp_path: Path) -> None:
    source = write_svs(tmp_path / "s.svs", 1300, 700, levels=2)
    slide = open_source([source])
    try:
        for level in slide.levels:
            for row in range(level.rows):
                first = row * level.columns
                stop = min(first + level.columns, level.tile_count)
                views = level.read_raw_views(first, stop)
                expected = [level.read_raw(index) for index in range(first, stop)]
                assert [None if v is None else bytes(v) for v in views] == expected
    finally:
        slide.close()


def test_copy_runs_cover_each_row_in_runs_of_bounded_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_svs(tmp_path / "s.svs", 2600, 700, levels=1)
    slide = open_source([source])
    try:
        level = slide.levels[0]
        sizes = [len(level.read_raw(index) or b"") for index in range(level.tile_count)]
        # A bound of about two tiles, so that every row is cut into several runs.
        bound = 2 * max(sizes)
        monkeypatch.setattr(tiff_reader, "COPY_RUN_BYTES", bound)
        runs = list(level.copy_runs())
        assert [index for first, stop in runs for index in range(first, stop)] == list(
            range(level.tile_count)
        )
        assert len(runs) > level.rows
        for first, stop in runs:
            assert stop > first
            assert (first // level.columns) == ((stop - 1) // level.columns)  # within a row
            assert stop - first == 1 or sum(sizes[first:stop]) <= bound
            views = level.read_raw_views(first, stop)
            assert [bytes(v) for v in views if v is not None] == [
                level.read_raw(index) for index in range(first, stop)
            ]
    finally:
        slide.close()


def test_copy_bytes_merges_tables_and_marks_rgb_as_before(openslide_fixtures: Path) -> None:
    # small.svs: abbreviated Aperio tiles (JPEGTables) with RGB components and no APP14.
    slide = open_source([openslide_fixtures / "small.svs"])
    try:
        level = slide.levels[0]
        assert level.coding.jpeg_tables and level.coding.jpeg_needs_adobe_rgb
        raw = level.read_raw(0)
        assert raw is not None
        expected = with_adobe_rgb_marker(merge_tables(level.coding.jpeg_tables, raw))
        assert level.copy_bytes(raw) == expected
        assert bytes(level.copy_bytes(memoryview(raw))) == expected
        with pytest.raises(CorruptSlideError):
            level.copy_bytes(b"\x00\x00" + raw[2:])
    finally:
        slide.close()


def test_a_tile_with_another_header_fails_the_copy_check(tmp_path: Path) -> None:
    source = write_svs(tmp_path / "s.svs", 1024, 768, levels=1)
    slide = open_source([source])
    try:
        level = slide.levels[0]
        check = CopiedJpegCheck(level)
        for index in range(level.tile_count):
            raw = level.read_raw(index)
            assert raw is not None
            check(level.copy_bytes(raw))  # the level's own tiles pass (header parsed once)
        smaller = encode_jpeg(np.full((128, 128, 3), 200, np.uint8), 90)
        with pytest.raises(ConformanceError, match="frame header"):
            check(smaller)
    finally:
        slide.close()


def test_an_undecodable_tile_in_the_generating_level_fails_the_slide(tmp_path: Path) -> None:
    source = write_svs(tmp_path / "s.svs", 2048, 1536, levels=1)
    # Tile 1 of level 0 (copied, and decoded to generate the levels below it) is off the
    # proof's sample of 16 in 48: only the generation thread decodes it.
    with tifffile.TiffFile(source) as tif:
        offset = int(tif.pages.first.dataoffsets[1])
        count = int(tif.pages.first.databytecounts[1])
    data = bytearray(source.read_bytes())
    scan = data.find(b"\xff\xda", offset, offset + count)
    # Keep the headers (the copy check passes), break the entropy-coded data.
    data[scan + 20 : offset + count - 2] = b"\xff\x01" * ((offset + count - 2 - scan - 20) // 2)
    source.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(CorruptSlideError):
        convert_slide([source], out, DicomIdentity("broken"), NO_GATE)
    assert not list(out.glob(".convert-spool-*"))


def test_the_gil_switch_interval_is_restored(tmp_path: Path) -> None:
    source = write_svs(tmp_path / "s.svs", 1024, 768, levels=1)
    before = sys.getswitchinterval()
    during: list[float] = []
    convert_slide(
        [source],
        tmp_path / "out",
        DicomIdentity("switch"),
        NO_GATE,
        progress=lambda done, total: during.append(sys.getswitchinterval()),
    )
    assert during and max(during) <= GIL_SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == before


def test_the_preload_loads_only_the_readers_the_outputs_need() -> None:
    assert reopen_readers({"dicom"}) == ("openslide", "wsidicom")
    assert reopen_readers({"tiff"}) == ("openslide", "tiffslide")
    assert reopen_readers({"dicom", "tiff"}) == ("openslide", "tiffslide", "wsidicom")

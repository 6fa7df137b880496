"""convert_slide on every layout the de-identification supports, every codec branch, and the
gate: lossless copies prove pixel equality, re-encodes and generated levels stay close to the
source, outputs are deterministic and re-open in OpenSlide, tiffslide and wsidicom."""

from __future__ import annotations

import filecmp
import itertools
import json
import shutil
from pathlib import Path

import imagecodecs
import numpy as np
import openslide
import pydicom
import pytest
import tifffile

import slidestream_samples as samples
from slidestream_samples.aperio import write_scanner_svs
from slidestream_wsi.convert import (
    ConversionOptions,
    ConversionResult,
    DicomIdentity,
    convert_slide,
)
from slidestream_wsi.convert.pixels import encode_jpeg
from slidestream_wsi.deid import DeidResult
from slidestream_wsi.errors import (
    ConformanceError,
    ConformanceToolMissing,
    MissingPixelSpacingError,
    SlideError,
)
from slidestream_wsi.pyramid import open_source

IDENTITY = DicomIdentity(
    slide_id="0190d0c4-7a1b-7c2d-8e3f-0a1b2c3d4e5f",
    patient_pseudonym="PSN-1-TESTPSEUDONYM0000",
    case_pseudonym="PSN-1-CASEPSEUDONYM00000",
    specimen_pseudonym="PSN-1-SPECPSEUDONYM00000",
)
# The synthetic generic TIFF and NDPI carry no resolution; the tests state a spacing for them.
OPTIONS = ConversionOptions(assumed_mpp_um=0.5)


def _levels_summary(result: ConversionResult) -> list[tuple[int, int, str, bool, bool]]:
    return [
        (lv.width_px, lv.height_px, lv.compression, lv.lossless_copy, lv.generated)
        for lv in result.levels
    ]


def _decoded_level(path: Path, index: int) -> np.ndarray:
    """A whole (small) level of a written output, decoded through our own reader."""
    slide = open_source([path])
    try:
        level = slide.levels[index]
        image = np.empty((level.rows * level.tile_height, level.columns * level.tile_width, 3))
        for i in range(level.tile_count):
            row, column = divmod(i, level.columns)
            y, x = row * level.tile_height, column * level.tile_width
            image[y : y + level.tile_height, x : x + level.tile_width] = level.decode(
                level.read_raw(i), i
            )
        return image[: level.height, : level.width]
    finally:
        slide.close()


@pytest.fixture(scope="session")
def converted(
    deidentified: dict[str, DeidResult], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ConversionResult]:
    """Every de-identified planted layout converted once, both outputs."""
    out = tmp_path_factory.mktemp("converted")
    return {
        name: convert_slide(list(result.outputs), out / name, IDENTITY, OPTIONS)
        for name, result in deidentified.items()
    }


@pytest.mark.parametrize(
    "layout", ["svs", "generic_tiff", "ome_tiff", "ndpi", "philips_tiff", "dicom"]
)
def test_every_layout_converts_to_both_outputs(
    layout: str, converted: dict[str, ConversionResult]
) -> None:
    result = converted[layout]
    sizes = [(lv.width_px, lv.height_px) for lv in result.levels]
    # The planted pyramids are 2048x1536 with 2x levels; the DICOM series has two, the rest
    # three; the levels below are generated down to one 256 px tile.
    assert sizes[0] == (2048, 1536)
    assert sizes[-1] == (256, 192)
    assert all(a[0] == 2 * b[0] for a, b in itertools.pairwise(sizes))
    assert result.tiff_file is not None and result.tiff_file.name == "slide.ome.tiff"
    names = [p.name for p in result.dicom_files]
    assert names == [f"level-{i}.dcm" for i in range(len(sizes))] + ["thumbnail.dcm"]
    json.dumps(result.provenance)
    reopen = result.provenance["reopen"]
    assert set(reopen) == {"openslide_tiff", "tiffslide", "wsidicom", "openslide_dicom"}  # type: ignore[arg-type]
    for instance in result.dicom_files:
        ds = pydicom.dcmread(instance, stop_before_pixels=True)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.6"
        assert ds.DimensionOrganizationType == "TILED_FULL"
        # Accession Number is SH (16 characters): the case pseudonym's one short form.
        assert ds.AccessionNumber == "1-CASEPSEUDONYM0"
        specimen = ds.SpecimenDescriptionSequence[0].SpecimenIdentifier
        assert specimen == IDENTITY.specimen_pseudonym
        assert ds.OpticalPathSequence[0].ICCProfile
        assert ds.ImageType[2] in ("VOLUME", "THUMBNAIL")
        assert "LABEL" not in ds.ImageType and "OVERVIEW" not in ds.ImageType


@pytest.mark.parametrize("layout", ["svs", "generic_tiff", "ome_tiff", "philips_tiff", "dicom"])
def test_tiled_jpeg_levels_are_copied_and_proven(
    layout: str, converted: dict[str, ConversionResult]
) -> None:
    result = converted[layout]
    copied = [lv for lv in result.levels if not lv.generated]
    assert copied and all(lv.lossless_copy for lv in copied)
    levels = result.provenance["levels"]
    assert isinstance(levels, list)
    for report, record in zip(result.levels, levels, strict=True):
        if not report.lossless_copy:
            assert report.pixel_proof_sha256 is None
            continue
        proof = record["proof"]
        assert proof["sampled_tiles"]
        hashes = proof["sha256"]
        assert hashes["source"] == hashes["dicom"] == hashes["tiff"] == report.pixel_proof_sha256


def test_ndpi_stripes_are_reencoded_once(
    converted: dict[str, ConversionResult], deidentified: dict[str, DeidResult]
) -> None:
    result = converted["ndpi"]
    assert [lv.lossless_copy for lv in result.levels] == [False] * len(result.levels)
    assert result.levels[0].tile_size_px == 256
    reference = open_source(list(deidentified["ndpi"].outputs))
    try:
        source = reference.levels[0]
        rows = [
            np.concatenate(
                [
                    source.decode(source.read_raw(r * source.columns + c), 0)
                    for c in range(source.columns)
                ],
                axis=1,
            )
            for r in range(256 // source.tile_height)
        ]
        top_left = np.concatenate(rows, axis=0)[:256, :256]
    finally:
        reference.close()
    output = _decoded_level(result.dicom_files[0], 0)[:256, :256]
    assert np.abs(output - top_left).mean() < 6  # one JPEG Q90 generation on noisy tissue


def test_generated_levels_are_the_box_filtered_level_above(
    converted: dict[str, ConversionResult],
) -> None:
    result = converted["svs"]
    assert result.tiff_file is not None
    parent = _decoded_level(result.tiff_file, 2)
    child = _decoded_level(result.tiff_file, 3)
    expected = np.round(parent.reshape(192, 2, 256, 2, 3).mean(axis=(1, 3))).astype(np.uint8)
    assert child.shape == expected.shape
    # The generated tile went through one JPEG encode: its error is that of encoding the exact
    # box filter once (the noisy tissue makes it large), and nothing more.
    tile = np.full((256, 256, 3), 255, np.uint8)
    tile[:192] = expected
    once = imagecodecs.jpeg8_decode(encode_jpeg(tile, 90))[:192]
    budget = np.abs(once.astype(float) - expected).mean()
    assert np.abs(child - expected).mean() <= budget + 0.01


def test_outputs_are_byte_identical_on_redelivery(
    deidentified: dict[str, DeidResult], tmp_path: Path
) -> None:
    sources = list(deidentified["svs"].outputs)
    first = convert_slide(sources, tmp_path / "a", IDENTITY, OPTIONS)
    second = convert_slide(sources, tmp_path / "b", IDENTITY, OPTIONS)
    assert first.tiff_file is not None and second.tiff_file is not None
    pairs = [*zip(first.dicom_files, second.dicom_files, strict=True)]
    pairs.append((first.tiff_file, second.tiff_file))
    for left, right in pairs:
        assert filecmp.cmp(left, right, shallow=False), left.name
    # The provenance record is stored beside them under a deterministic key too: a second
    # handling (a redelivery, a replica evicted mid-conversion) must write the same bytes, or it
    # overwrites the object an announced event describes. Timings live beside it, not in it.
    assert json.dumps(first.provenance, sort_keys=True) == json.dumps(
        second.provenance, sort_keys=True
    )
    assert first.timings["total_s"] > 0
    again = convert_slide(sources, tmp_path / "a", IDENTITY, OPTIONS)  # overwrite in place
    assert [p.name for p in again.dicom_files] == [p.name for p in first.dicom_files]
    other = convert_slide(sources, tmp_path / "c", DicomIdentity("another-slide"), OPTIONS)
    uid = pydicom.dcmread(other.dicom_files[0], stop_before_pixels=True).SeriesInstanceUID
    assert uid != pydicom.dcmread(first.dicom_files[0], stop_before_pixels=True).SeriesInstanceUID


def test_openslide_public_slides(openslide_fixtures: Path, tmp_path: Path) -> None:
    small = convert_slide([openslide_fixtures / "small.svs"], tmp_path / "small", IDENTITY)
    assert _levels_summary(small) == [(16, 16, "jpeg", True, False)]
    dicom = pydicom.dcmread(small.dicom_files[0], stop_before_pixels=True)
    # Aperio JPEG carries RGB components: the copy is signalled RGB (APP14 added).
    assert dicom.PhotometricInterpretation == "RGB"
    assert small.levels[0].mpp_x == pytest.approx(0.499)
    assert dicom.OpticalPathSequence[0].ObjectiveLensPower == 20
    boxes = convert_slide([openslide_fixtures / "boxes.tiff"], tmp_path / "boxes", IDENTITY)
    # Deflate tiles cannot go into DICOM: re-encoded, the four source levels kept.
    assert [lv.compression for lv in boxes.levels] == ["jpeg"] * 4
    assert not any(lv.lossless_copy for lv in boxes.levels)
    with tifffile.TiffFile(openslide_fixtures / "boxes.tiff") as tif:
        icc = tif.pages.first.iccprofile
    assert pydicom.dcmread(boxes.dicom_files[0]).OpticalPathSequence[0].ICCProfile == icc
    boxes_dcm = convert_slide([openslide_fixtures / "boxes_0.dcm"], tmp_path / "bd", IDENTITY)
    assert boxes_dcm.levels[0].lossless_copy


@pytest.mark.parametrize(
    ("layout", "mpp_um", "objective_power"),
    [
        ("svs", 0.499, 20.0),  # Aperio ImageDescription "MPP", "AppMag"
        ("ome_tiff", 0.25, 20.0),  # OME-XML PhysicalSizeX/Y, NominalMagnification
        ("philips_tiff", 0.25, None),  # per-level DICOM_PIXEL_SPACING in mm
        ("leica_scn", 0.5, 20.0),  # Leica XML
        ("ventana_bif", 0.465, 20.0),  # Ventana XMP ScanRes
        ("generic_tiff", None, None),  # no resolution tags written
    ],
)
def test_vendor_spacing_and_power_are_read(
    layout: str,
    mpp_um: float | None,
    objective_power: float | None,
    deidentified: dict[str, DeidResult],
) -> None:
    slide = open_source(list(deidentified[layout].outputs))
    try:
        assert slide.mpp == (None if mpp_um is None else pytest.approx((mpp_um, mpp_um)))
        assert slide.objective_power == objective_power
    finally:
        slide.close()


def test_resolution_tags_give_the_spacing_where_openslide_does_not_open(tmp_path: Path) -> None:
    # A striped generic TIFF (OpenSlide opens tiled ones only), 40000 px/cm = 0.25 µm/px.
    path = tmp_path / "striped.tif"
    tifffile.imwrite(
        path,
        np.full((300, 400, 3), 200, np.uint8),
        photometric="rgb",
        rowsperstrip=64,
        resolution=(40000, 20000),
        resolutionunit=tifffile.RESUNIT.CENTIMETER,
    )
    with pytest.raises(openslide.OpenSlideError):
        openslide.OpenSlide(path)
    slide = open_source([path])
    try:
        assert slide.mpp == pytest.approx((0.25, 0.5))
    finally:
        slide.close()


@pytest.mark.parametrize("name", ["unreadable.svs", "unopenable.tiff"])
def test_broken_public_slides_raise_slide_errors(
    name: str, openslide_fixtures: Path, tmp_path: Path
) -> None:
    with pytest.raises(SlideError):
        convert_slide([openslide_fixtures / name], tmp_path, IDENTITY)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("variants")


def test_jpeg2000_is_copied_into_dicom_and_reencoded_for_tiff(
    variants: Path, tmp_path: Path
) -> None:
    source = samples.make_conversion_tiff(
        variants, "j2k.tiff", compression="jpeg2000", size_px=(1024, 768), downsamples=(1, 2)
    )
    result = convert_slide([source], tmp_path, IDENTITY)
    level0 = result.levels[0]
    assert (level0.compression, level0.lossless_copy) == ("jpeg2000", True)
    assert (level0.tiff_compression, level0.tiff_lossless_copy) == ("jpeg", False)
    ds = pydicom.dcmread(result.dicom_files[0], stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.91"
    assert ds.PhotometricInterpretation == "YBR_RCT"
    # Lossless JPEG 2000 copied: DICOM level 0 is the source level 0, bit for bit.
    reference = _decoded_level(source, 0)
    assert np.array_equal(_decoded_level(result.dicom_files[0], 0), reference)


def test_uncompressed_tiles_are_copied_natively(variants: Path, tmp_path: Path) -> None:
    source = samples.make_conversion_tiff(
        variants, "raw.tiff", compression="none", size_px=(1000, 700), downsamples=(1, 2)
    )
    result = convert_slide([source], tmp_path, IDENTITY, ConversionOptions(verify="full"))
    assert [lv.compression for lv in result.levels[:2]] == ["none", "none"]
    assert all(lv.lossless_copy for lv in result.levels[:2])
    ds = pydicom.dcmread(result.dicom_files[0], stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    levels = result.provenance["levels"]
    assert isinstance(levels, list)
    assert levels[0]["proof"]["sampled_tiles"] == list(range(4 * 3))  # verify=full: every tile
    reference = _decoded_level(source, 0)
    assert np.array_equal(_decoded_level(result.dicom_files[0], 0), reference)
    assert result.tiff_file is not None
    assert np.array_equal(_decoded_level(result.tiff_file, 0), reference)


def test_stripes_odd_sizes_and_missing_levels_are_generated(variants: Path, tmp_path: Path) -> None:
    source = samples.make_conversion_tiff(
        variants, "strips.tiff", tile_px=None, size_px=(1001, 777), downsamples=(1,)
    )
    done: list[tuple[int, int]] = []
    result = convert_slide([source], tmp_path, IDENTITY, progress=lambda d, t: done.append((d, t)))
    assert _levels_summary(result) == [
        (1001, 777, "jpeg", False, False),
        (501, 389, "jpeg", False, True),
        (251, 195, "jpeg", False, True),  # fits one 256 px tile: the pyramid ends here
    ]
    assert done[-1][0] == done[-1][1] and [d for d, _ in done] == sorted(d for d, _ in done)
    with openslide.OpenSlide(result.dicom_files[0]) as slide:
        assert slide.level_dimensions == ((1001, 777), (501, 389), (251, 195))
    assert [lv.mpp_x for lv in result.levels] == [0.5, 1.0, 2.0]


def test_pyramid_gaps_are_filled_from_the_nearest_level(variants: Path, tmp_path: Path) -> None:
    source = samples.make_conversion_tiff(
        variants, "gap.tiff", size_px=(1024, 1024), downsamples=(1, 4)
    )
    result = convert_slide([source], tmp_path, IDENTITY)
    assert [(lv.width_px, lv.generated, lv.source_level) for lv in result.levels] == [
        (1024, False, 0),
        (512, True, 0),
        (256, False, 1),
    ]
    no_gaps = convert_slide(
        [source], tmp_path / "nogap", IDENTITY, ConversionOptions(fill_pyramid_gaps=False)
    )
    assert [lv.width_px for lv in no_gaps.levels] == [1024, 256]


def test_source_levels_only_copies_the_pyramid_as_it_is(variants: Path, tmp_path: Path) -> None:
    """extend_pyramid and fill_pyramid_gaps off: wsidicomizer's default job, the lossless path
    alone; no thumbnail instance when no level is small enough for one and the source stores
    no thumbnail image."""
    source = samples.make_conversion_tiff(
        variants, "two-levels.tiff", size_px=(3072, 2048), downsamples=(1, 2)
    )
    options = ConversionOptions(extend_pyramid=False, fill_pyramid_gaps=False)
    result = convert_slide([source], tmp_path, IDENTITY, options)
    assert [(lv.width_px, lv.lossless_copy, lv.generated) for lv in result.levels] == [
        (3072, True, False),
        (1536, True, False),
    ]
    assert sorted(p.name for p in result.dicom_files) == ["level-0.dcm", "level-1.dcm"]
    assert result.provenance["options"]["extend_pyramid"] is False  # type: ignore[index]
    with openslide.OpenSlide(result.tiff_file) as slide:  # type: ignore[arg-type]
        assert slide.level_dimensions == ((3072, 2048), (1536, 1024))
    # A source level within THUMBNAIL_MAX_PX keeps the thumbnail instance.
    small = samples.make_conversion_tiff(
        variants, "small-two-levels.tiff", size_px=(1024, 768), downsamples=(1, 2)
    )
    kept = convert_slide([small], tmp_path / "small", IDENTITY, options)
    assert [lv.width_px for lv in kept.levels] == [1024, 512]
    assert sorted(p.name for p in kept.dicom_files) == [
        "level-0.dcm",
        "level-1.dcm",
        "thumbnail.dcm",
    ]


def test_source_levels_only_take_the_sources_own_thumbnail(tmp_path: Path) -> None:
    """No level within THUMBNAIL_MAX_PX and the pyramid not extended: the thumbnail instance
    is the thumbnail image the SVS stores (wsidicomizer's default writes one too), not a whole
    large level decoded."""
    # A smooth picture, so that two JPEG passes keep it close (noise would not survive 4:2:0).
    yy, xx = np.mgrid[0:192, 0:256]
    thumbnail = np.stack([xx, yy, 255 - xx], axis=-1).astype(np.uint8)
    source = write_scanner_svs(tmp_path / "scanner.svs", 2560, 1920, thumbnail)
    slide = open_source([source])
    try:
        assert slide.thumbnail is not None
        assert (slide.thumbnail.width, slide.thumbnail.height) == (256, 192)
    finally:
        slide.close()
    options = ConversionOptions(extend_pyramid=False, fill_pyramid_gaps=False)
    result = convert_slide([source], tmp_path / "out", IDENTITY, options)
    assert [lv.width_px for lv in result.levels] == [2560, 1280]
    assert sorted(p.name for p in result.dicom_files) == [
        "level-0.dcm",
        "level-1.dcm",
        "thumbnail.dcm",
    ]
    instance = pydicom.dcmread(result.dicom_files[-1])
    assert list(instance.ImageType)[2] == "THUMBNAIL"
    assert (instance.TotalPixelMatrixColumns, instance.TotalPixelMatrixRows) == (256, 192)
    # 2560 level-0 pixels of 0.499 µm across 256 thumbnail pixels: 4.99 µm (0.00499 mm) each.
    spacing = instance.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    assert [float(v) for v in spacing] == pytest.approx([0.00499, 0.00499])
    written = instance.pixel_array
    # JPEG twice (the source's strip, then ours at Q90): close, not equal.
    assert np.abs(written.astype(np.int16) - thumbnail.astype(np.int16)).mean() < 3
    # The series still opens (the re-open check ran inside convert_slide, dciodvfy too).
    assert result.provenance["reopen"]  # type: ignore[index]


def test_tile_size_and_quality_apply_to_reencoded_levels(variants: Path, tmp_path: Path) -> None:
    source = samples.make_conversion_tiff(
        variants, "deflate.tiff", compression="zlib", size_px=(600, 400), downsamples=(1,)
    )
    result = convert_slide(
        [source],
        tmp_path,
        IDENTITY,
        ConversionOptions(outputs=frozenset({"dicom"}), tile_size_px=128, jpeg_quality=70),
    )
    assert result.tiff_file is None
    assert [lv.tile_size_px for lv in result.levels] == [128] * len(result.levels)
    assert (result.levels[-1].width_px, result.levels[-1].height_px) == (75, 50)
    ds = pydicom.dcmread(result.dicom_files[0], stop_before_pixels=True)
    assert (ds.Rows, ds.Columns, ds.NumberOfFrames) == (128, 128, 5 * 4)


def test_missing_pixel_spacing_refuses_dicom_unless_assumed(
    planted: dict[str, samples.PlantedSlide], tmp_path: Path
) -> None:
    source = planted["generic_tiff"].path  # type: ignore[attr-defined]
    with pytest.raises(MissingPixelSpacingError):
        convert_slide([source], tmp_path / "a", IDENTITY)
    tiff_only = convert_slide(
        [source], tmp_path / "b", IDENTITY, ConversionOptions(outputs=frozenset({"tiff"}))
    )
    assert tiff_only.dicom_files == () and tiff_only.levels[0].mpp_x is None


def test_a_copy_that_changes_pixels_fails_the_proof(
    planted: dict[str, samples.PlantedSlide], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slidestream_wsi import pyramid as source_module
    from slidestream_wsi.convert.pixels import encode_jpeg

    original = source_module.SourceLevel.copy_bytes
    grey = encode_jpeg(np.full((256, 256, 3), 128, np.uint8), 90)

    def tampered(self: source_module.SourceLevel, raw: bytes) -> bytes:
        return grey if self.index == 0 else original(self, raw)

    monkeypatch.setattr(source_module.SourceLevel, "copy_bytes", tampered)
    with pytest.raises(ConformanceError, match="differ from the source"):
        convert_slide(
            [planted["svs"].path],  # type: ignore[attr-defined]
            tmp_path,
            IDENTITY,
            ConversionOptions(verify="full", run_dciodvfy=False, reopen_check=False),
        )


def test_missing_dciodvfy_is_an_environment_error(
    planted: dict[str, samples.PlantedSlide], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slidestream_wsi.convert import verify

    monkeypatch.setattr(verify.shutil, "which", lambda name: None)
    with pytest.raises(ConformanceToolMissing) as caught:
        convert_slide([planted["svs"].path], tmp_path, IDENTITY)  # type: ignore[attr-defined]
    assert not isinstance(caught.value, SlideError)


def test_dciodvfy_errors_fail_the_slide(
    planted: dict[str, samples.PlantedSlide], tmp_path: Path
) -> None:
    from slidestream_wsi.convert.verify import run_dciodvfy

    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy (dicom3tools) must be installed: make setup installs it")
    # The planted scanner-style instance lacks attributes the IOD requires (dciodvfy errors).
    with pytest.raises(ConformanceError, match="Error - "):
        run_dciodvfy(planted["dicom"].files[0])  # type: ignore[attr-defined]
    # A bare dataset makes dciodvfy itself fail (it dies on SIGFPE): that passes nothing.
    broken = tmp_path / "broken.dcm"
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"
    ds.SOPInstanceUID = "2.25.1"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    pydicom.dcmwrite(broken, ds, enforce_file_format=True)
    with pytest.raises(ConformanceError, match="dciodvfy"):
        run_dciodvfy(broken)


@pytest.mark.parametrize("level0_size", [(2048, 1536), (4096, 4096)])
def test_philips_levels_stepping_by_four_get_their_gap_levels(
    level0_size: tuple[int, int], tmp_path: Path
) -> None:
    """Philips 4x pyramids (4096 -> 1024 -> 256): the 2x levels between are generated, and every
    reader of the check (OpenSlide, tiffslide, wsidicom) finds all five."""
    slide = samples.make_philips_tiff(tmp_path, level_step=4, level0_size=level0_size)
    result = convert_slide([slide.path], tmp_path / "out", IDENTITY, OPTIONS)
    width, height = level0_size
    sizes = [(lv.width_px, lv.height_px) for lv in result.levels]
    assert sizes[:5] == [(width >> i, height >> i) for i in range(5)]
    assert [lv.generated for lv in result.levels[:5]] == [False, True, False, True, False]
    assert all(lv.lossless_copy for lv in result.levels if not lv.generated)
    assert set(result.provenance["reopen"]) >= {"wsidicom", "openslide_dicom"}  # type: ignore[arg-type]


def test_levels_the_metadata_invents_are_refused_clearly(tmp_path: Path) -> None:
    """A Philips XML that lists 2x levels over pages stepping by 4x: a clear corrupt-slide error,
    not a crash in the middle of writing."""
    slide = samples.make_philips_tiff(tmp_path, level_step=4, xml_level_step=2)
    with pytest.raises(SlideError, match="tiles of 256x256 px stored") as caught:
        convert_slide([slide.path], tmp_path / "out", IDENTITY, OPTIONS)
    assert caught.value.reason == "corrupt-slide"

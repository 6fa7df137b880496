"""TIFF specifics: vendor scrubbing, label replacement, idempotence, OpenSlide's test slides."""

from __future__ import annotations

from pathlib import Path

import pytest
import tifffile

from slidestream_wsi.deid import AssociatedImagePolicy, DeidPolicy, deidentify
from slidestream_wsi.deid.aperio import scrub_aperio_description
from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.errors import CorruptSlideError, UnsupportedFormatError
from slidestream_wsi.scan import list_metadata, scan_bytes_for_tokens


def test_aperio_description_keeps_structure_and_numbers() -> None:
    audit = AuditRecorder()
    text = (
        "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30"
        "|AppMag = 20|MPP = 0.4990|Filename = CMU-1|User = someone|Barcode = 123|MPP2 = x"
    )
    scrubbed = scrub_aperio_description(text, audit)
    assert scrubbed == (
        "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30"
        "|AppMag = 20|MPP = 0.4990"
    )
    result = audit.finish()
    assert "aperio.Filename" in result.removed_fields
    assert "aperio.unknown_key" in result.removed_fields  # unknown keys are not named
    assert {"CMU-1", "someone"} <= result.removed_values


def test_deidentification_is_deterministic(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    source = planted["svs"].path  # type: ignore[attr-defined]
    first = deidentify(source, tmp_path / "a.svs", policy)
    second = deidentify(source, tmp_path / "b.svs", policy)
    assert first.outputs[0].read_bytes() == second.outputs[0].read_bytes()


def test_label_can_be_replaced_by_the_pseudonym(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    replacing = DeidPolicy(
        policy.tenant,
        policy.key,
        policy.pseudonym,
        associated_images=AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM,
    )
    slide = planted["svs"]
    result = deidentify(slide.path, tmp_path / "relabelled.svs", replacing)  # type: ignore[attr-defined]
    assert result.label_replaced
    output = result.outputs[0]
    assert scan_bytes_for_tokens(output, list(slide.tokens)) == []  # type: ignore[attr-defined]
    assert set(list_metadata(output).associated_images) == {"thumbnail", "label"}
    openslide = pytest.importorskip("openslide")
    with openslide.OpenSlide(output) as opened:
        assert set(opened.associated_images) == {"thumbnail", "label"}
        assert opened.associated_images["label"].size == (320, 96)
    assert result.rewritten_fraction <= 0.01


def test_exif_ifd_is_removed_and_wiped(
    planted: dict[str, object], deidentified: dict[str, object]
) -> None:
    output = deidentified["generic_tiff"].outputs[0]  # type: ignore[attr-defined]
    with tifffile.TiffFile(output) as tif:
        for page in tif.pages:
            assert 34665 not in page.tags and 306 not in page.tags and 315 not in page.tags


def test_openslide_test_slides(
    openslide_fixtures: Path, policy: DeidPolicy, tmp_path: Path
) -> None:
    small = deidentify(openslide_fixtures / "small.svs", tmp_path / "small.svs", policy)
    identity = ["CMU-1", "b414003d-95c6-48b0-9369-8010ed517ba7", "CPAPERIOCS", "12/29/09"]
    assert scan_bytes_for_tokens(small.outputs[0], identity) == []
    assert "aperio.User" in small.audit.removed_fields
    boxes = deidentify(openslide_fixtures / "boxes.tiff", tmp_path / "boxes.tiff", policy)
    assert len(boxes.levels) == 4
    dicom = deidentify(openslide_fixtures / "boxes_0.dcm", tmp_path / "boxes.dcm", policy)
    assert scan_bytes_for_tokens(dicom.outputs[0], ["Bangor", "CPAPERIOCS", "SLIDE_1"]) == []
    for name in ("unreadable.svs", "unopenable.tiff"):
        with pytest.raises(CorruptSlideError):
            deidentify(openslide_fixtures / name, tmp_path / name, policy)
        assert not (tmp_path / name).exists()


def test_formats_without_deidentification_are_refused(policy: DeidPolicy, tmp_path: Path) -> None:
    import zipfile

    mrxs = tmp_path / "slide.zip"
    with zipfile.ZipFile(mrxs, "w") as archive:
        archive.writestr("slide.mrxs", b"x")
        archive.writestr("slide/Slidedat.ini", b"[GENERAL]")
    with pytest.raises(UnsupportedFormatError):
        deidentify(mrxs, tmp_path / "out", policy)

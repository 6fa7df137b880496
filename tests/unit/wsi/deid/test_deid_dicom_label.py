"""A generated LABEL instance with only the pseudonym, joined to a de-identified DICOM series."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from slidestream_wsi.deid import DeidPolicy, DeidResult
from slidestream_wsi.deid.dicom import write_pseudonym_label_instance
from slidestream_wsi.deid.label import pseudonym_label
from slidestream_wsi.errors import DeidentificationError
from slidestream_wsi.limits import DEFAULT_LIMITS
from slidestream_wsi.scan import list_metadata, scan_bytes_for_tokens
from slidestream_wsi.validate import validate_slide


@pytest.fixture()
def series_with_label(
    deidentified: dict[str, DeidResult], policy: DeidPolicy, tmp_path: Path
) -> tuple[Path, Path, str]:
    folder = tmp_path / "series"
    folder.mkdir()
    for output in deidentified["dicom"].outputs:
        shutil.copy(output, folder / output.name)
    reference = sorted(folder.iterdir())[0]
    label = folder / "label.dcm"
    uid = write_pseudonym_label_instance(reference, label, policy, DEFAULT_LIMITS)
    return folder, label, uid


def test_label_instance_joins_the_series(
    series_with_label: tuple[Path, Path, str], deidentified: dict[str, DeidResult]
) -> None:
    _folder, label, uid = series_with_label
    ds = pydicom.dcmread(label)
    volume = pydicom.dcmread(deidentified["dicom"].outputs[0])
    assert ds.SOPInstanceUID == uid == ds.file_meta.MediaStorageSOPInstanceUID
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "LABEL", "NONE"]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
        assert ds[keyword].value == volume[keyword].value
    info = validate_slide(label)
    assert info.levels == () and [a.role for a in info.associated_images] == ["label"]
    assert list_metadata(label).associated_images == ("label",)


def test_label_instance_shows_the_pseudonym_and_no_token(
    series_with_label: tuple[Path, Path, str], planted: dict[str, object], policy: DeidPolicy
) -> None:
    _folder, label, _uid = series_with_label
    assert scan_bytes_for_tokens(label, list(planted["dicom"].tokens)) == []  # type: ignore[attr-defined]
    pixels = pydicom.dcmread(label).pixel_array
    expected = pseudonym_label(policy.pseudonym).astype(np.int16)
    assert pixels.shape == expected.shape
    # pydicom converts YBR_FULL_422 JPEG to RGB; JPEG quality 90 stays close to the original.
    assert float(np.abs(pixels.astype(np.int16) - expected).mean()) < 8.0


def test_wsidicom_sees_the_label(series_with_label: tuple[Path, Path, str]) -> None:
    import wsidicom

    folder, _label, _uid = series_with_label
    with wsidicom.WsiDicom.open(folder) as slide:
        assert len(slide.levels) == 2
        assert len(slide.labels) == 1
        assert slide.read_label().size == (320, 96)


def test_label_instance_is_deterministic(
    deidentified: dict[str, DeidResult], policy: DeidPolicy, tmp_path: Path
) -> None:
    reference = deidentified["dicom"].outputs[0]
    first = write_pseudonym_label_instance(reference, tmp_path / "a.dcm", policy, DEFAULT_LIMITS)
    second = write_pseudonym_label_instance(reference, tmp_path / "b.dcm", policy, DEFAULT_LIMITS)
    assert first == second
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()


def test_reference_must_be_deidentified(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    with pytest.raises(DeidentificationError):
        write_pseudonym_label_instance(
            planted["dicom"].files[0],  # type: ignore[attr-defined]
            tmp_path / "label.dcm",
            policy,
            DEFAULT_LIMITS,
        )


def test_the_replace_policy_gives_a_dicom_series_its_pseudonym_label(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    from dataclasses import replace

    from slidestream_wsi.deid import AssociatedImagePolicy, deidentify

    archive = tmp_path / "series.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", planted["dicom"].path)  # type: ignore[attr-defined]
    replacing = replace(policy, associated_images=AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM)
    result = deidentify(archive, tmp_path / "out", replacing)

    assert result.label_replaced
    [label] = [p for p in result.outputs if p.name == "label.dcm"]
    assert list(pydicom.dcmread(label).ImageType)[2] == "LABEL"
    for output in result.outputs:
        assert scan_bytes_for_tokens(output, list(planted["dicom"].tokens)) == []  # type: ignore[attr-defined]
    import wsidicom

    with wsidicom.WsiDicom.open(tmp_path / "out") as slide:
        assert len(slide.labels) == 1 and len(slide.levels) == 2

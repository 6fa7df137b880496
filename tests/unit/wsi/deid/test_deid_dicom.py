"""DICOM specifics: PS3.15 Annex E marks, UIDs, dates, private tags, dropped instances."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest

from slidestream_wsi.deid import DeidPolicy, DeidResult, DicomDatePolicy, deidentify
from slidestream_wsi.errors import DeidentificationError
from slidestream_wsi.pseudonyms import date_shift_days


def test_annex_e_marks_and_removals(
    deidentified: dict[str, DeidResult], policy: DeidPolicy
) -> None:
    for output in deidentified["dicom"].outputs:
        ds = pydicom.dcmread(output)
        assert ds.PatientIdentityRemoved == "YES"
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100"]
        assert ds.LongitudinalTemporalInformationModified == "REMOVED"
        assert ds.PatientName == policy.pseudonym and ds.PatientID == policy.pseudonym
        assert ds.ContainerIdentifier == policy.pseudonym
        assert not any(elem.tag.is_private for elem in ds.iterall())
        for keyword in (
            "ImageComments",
            "InstitutionName",
            "OperatorsName",
            "StudyDescription",
            "ContributingEquipmentSequence",
            "StationName",
        ):
            assert keyword not in ds
        assert ds.AccessionNumber == "" and ds.StudyDate == ""
        assert "SourceApplicationEntityTitle" not in ds.file_meta
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_uids_are_remapped_consistently_and_deterministically(
    planted: dict[str, object],
    deidentified: dict[str, DeidResult],
    policy: DeidPolicy,
    tmp_path: Path,
) -> None:
    originals = [pydicom.dcmread(f) for f in planted["dicom"].files]  # type: ignore[attr-defined]
    outputs = [pydicom.dcmread(f) for f in deidentified["dicom"].outputs]
    assert len({ds.StudyInstanceUID for ds in outputs}) == 1
    assert len({ds.SeriesInstanceUID for ds in outputs}) == 1
    assert outputs[0].StudyInstanceUID != originals[0].StudyInstanceUID
    assert outputs[0].SOPClassUID == originals[0].SOPClassUID
    again = deidentify(planted["dicom"].files[0], tmp_path / "again.dcm", policy)  # type: ignore[attr-defined]
    ds = pydicom.dcmread(again.outputs[0])
    assert ds.StudyInstanceUID == outputs[0].StudyInstanceUID
    assert ds.SOPInstanceUID in {o.SOPInstanceUID for o in outputs}


def test_modified_dates_option_shifts_dates(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    shifting = DeidPolicy(
        policy.tenant, policy.key, policy.pseudonym, dicom_dates=DicomDatePolicy.SHIFT
    )
    source = planted["dicom"].files[0]  # type: ignore[attr-defined]
    result = deidentify(source, tmp_path / "shifted.dcm", shifting)
    ds = pydicom.dcmread(result.outputs[0])
    days = date_shift_days(policy.key, policy.tenant, pydicom.dcmread(source).PatientID)
    expected = (dt.date(1987, 11, 23) + dt.timedelta(days=days)).strftime("%Y%m%d")
    assert ds.StudyDate == expected and ds.ContentDate == expected
    assert ds.AcquisitionDateTime.startswith(expected)
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert ds.PatientBirthDate == ""


def test_a_lone_label_instance_yields_nothing(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    with pytest.raises(DeidentificationError):
        deidentify(planted["dicom"].files[2], tmp_path / "label.dcm", policy)  # type: ignore[attr-defined]

"""Every value de-identification and conversion write fits its attribute's VR (PS3.5 Table 6.2-1),
pseudonyms included: a case pseudonym lands in the 16 characters of an Accession Number."""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_VR

from slidestream_wsi.convert import DicomIdentity
from slidestream_wsi.convert.dicom_out import build_dataset
from slidestream_wsi.deid import DeidPolicy, deidentify
from slidestream_wsi.deid.dicom_profile import BASIC_PROFILE
from slidestream_wsi.dicom.values import (
    MAX_CHARS_BY_VR,
    attribute_value,
    dummy_value,
    max_chars,
    violations,
)
from slidestream_wsi.pseudonyms import (
    MIN_FITTED_DIGEST_CHARS,
    PseudonymKey,
    fit_pseudonym,
    pseudonym,
)
from tests.support.dicom import jpeg_volume, slide_description

SECRET = b"0123456789abcdef0123456789abcdef"
LARGEST_KEY_VERSION = 999
"""The largest key version whose pseudonyms still fit a Short String with 60 bits of digest."""


def _pseudonym(role: str, version: int = LARGEST_KEY_VERSION) -> str:
    return pseudonym(PseudonymKey(version, SECRET), "acme", role, f"{role}-S24-99431")


def test_fitted_pseudonym_is_stable_short_and_a_prefix_of_the_full_one() -> None:
    full = _pseudonym("case", version=1)
    short = fit_pseudonym(full, 16)
    assert len(full) == 26 and len(short) == 16
    assert short == fit_pseudonym(full, 16)
    assert re.fullmatch(r"1-[A-Z2-7]{14}", short)
    assert full.removeprefix("PSN-").startswith(short)
    assert fit_pseudonym(full, 64) == full
    other = _pseudonym("specimen", version=1)
    assert fit_pseudonym(other, 16) != short


def test_fitting_refuses_what_would_lose_too_much_or_is_no_pseudonym() -> None:
    assert len(fit_pseudonym(_pseudonym("case"), 16)) == 16
    with pytest.raises(ValueError, match="digest"):
        fit_pseudonym(_pseudonym("case", version=LARGEST_KEY_VERSION + 1), 16)
    with pytest.raises(ValueError, match="digest"):
        fit_pseudonym(_pseudonym("case"), MIN_FITTED_DIGEST_CHARS)
    with pytest.raises(ValueError, match="not a pseudonym"):
        fit_pseudonym("an ordinary identifier far too long", 16)


def test_attribute_values_follow_the_data_dictionary() -> None:
    full = _pseudonym("case")
    assert max_chars("AccessionNumber") == MAX_CHARS_BY_VR["SH"] == 16
    assert attribute_value("AccessionNumber", full, pseudonym=True) == fit_pseudonym(full, 16)
    assert attribute_value("PatientID", full, pseudonym=True) == full
    with pytest.raises(ValueError, match="AccessionNumber"):
        attribute_value("AccessionNumber", "a constant that is too long")
    assert dummy_value("PatientAge", "ANONYMIZED") == "000D"
    assert dummy_value("StationName", "A" * 40) == "A" * 16


def _conversion_dataset(identity: DicomIdentity) -> pydicom.Dataset:
    description = slide_description(
        identity, mpp=(0.2527, 0.2527), level0_size=(98_304, 77_312), options_key="dicom/jpeg90"
    )
    return build_dataset(description, jpeg_volume("level-3", (12_288, 9_664), level=3))


@pytest.fixture
def strict_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydicom raises on any value its VR refuses, as it is set and as it is read back."""
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.RAISE)
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.RAISE)


@pytest.mark.usefixtures("strict_values")
def test_every_attribute_conversion_writes_fits_its_vr(tmp_path: Path) -> None:
    identity = DicomIdentity(
        "0190aaaa-0000-7000-8000-000000000001",
        patient_pseudonym=_pseudonym("patient"),
        case_pseudonym=_pseudonym("case"),
        specimen_pseudonym=_pseudonym("specimen"),
        container_pseudonym=_pseudonym("container"),
    )
    ds = _conversion_dataset(identity)
    assert violations(ds) == []
    assert ds.AccessionNumber == fit_pseudonym(identity.case_pseudonym or "", 16)
    path = tmp_path / "level.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    assert violations(pydicom.dcmread(path, stop_before_pixels=True)) == []


def _original_value(keyword: str) -> str:
    vr = dictionary_VR(keyword)
    samples = {
        "DA": "19871123",
        "TM": "040506",
        "DT": "19871123040506",
        "PN": "Quixwell^Jonah",
        "CS": "O",
    }
    return samples.get(vr, "S24-99431-A1"[: MAX_CHARS_BY_VR.get(vr, 64)])


def test_every_attribute_deidentification_writes_fits_its_vr(
    planted: dict[str, object], key: PseudonymKey, tmp_path: Path
) -> None:
    source = pydicom.dcmread(planted["dicom"].files[0])  # type: ignore[attr-defined]
    replaced = [
        keyword
        for keyword, action in BASIC_PROFILE.items()
        if action in ("Z", "D") and dictionary_VR(keyword) != "SQ"
    ]
    for keyword in replaced:
        setattr(source, keyword, _original_value(keyword))
    planted_path = tmp_path / "every-replaced-attribute.dcm"
    pydicom.dcmwrite(planted_path, source, enforce_file_format=True)
    policy = DeidPolicy(tenant="acme", key=key, pseudonym=_pseudonym("patient"))
    result = deidentify(planted_path, tmp_path / "out.dcm", policy)
    ds = pydicom.dcmread(result.outputs[0], stop_before_pixels=True)
    assert violations(ds) == []
    with pydicom.config.strict_reading():
        pydicom.dcmread(result.outputs[0], stop_before_pixels=True).walk(lambda *_: None)
    assert {keyword for keyword in replaced if keyword in ds} == set(replaced)
    assert ds.PatientID == policy.pseudonym

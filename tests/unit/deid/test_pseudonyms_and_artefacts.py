"""Pseudonym assignment (roles, primary, rotation) and deterministic output keys."""

from __future__ import annotations

from uuid import UUID

from slidestream_deid.domain.artefacts import artefact_name, content_type
from slidestream_deid.domain.identifiers import SlideIdentifiers
from slidestream_deid.domain.pseudonyms import pseudonymise
from slidestream_wsi.detect import SlideFormat
from slidestream_wsi.pseudonyms import PseudonymKey, pseudonym

KEY_1 = PseudonymKey(1, b"k" * 32)
KEY_2 = PseudonymKey(2, b"j" * 32)
SLIDE = UUID("01a21a4c-3962-762b-a75d-c3a58e65b4bd")


def test_every_role_gets_a_pseudonym_and_the_patient_is_primary() -> None:
    ids = SlideIdentifiers(case_id="C-1", specimen_id="S-1", patient_id="P-1")
    names = pseudonymise(KEY_1, "acme", SLIDE, ids)
    assert names.by_role == {
        "case": pseudonym(KEY_1, "acme", "case", "C-1"),
        "specimen": pseudonym(KEY_1, "acme", "specimen", "S-1"),
        "patient": pseudonym(KEY_1, "acme", "patient", "P-1"),
    }
    assert names.primary == names.by_role["patient"]
    assert {(e.role, e.original_id, e.key_version) for e in names.entries} == {
        ("case", "C-1", 1),
        ("specimen", "S-1", 1),
        ("patient", "P-1", 1),
    }
    assert "C-1" not in repr(names.entries)


def test_same_input_same_pseudonym_rotation_gives_new_ones() -> None:
    ids = SlideIdentifiers(case_id="C-1")
    first = pseudonymise(KEY_1, "acme", SLIDE, ids)
    assert pseudonymise(KEY_1, "acme", SLIDE, ids) == first
    rotated = pseudonymise(KEY_2, "acme", SLIDE, ids)
    assert rotated.by_role["case"] != first.by_role["case"]
    assert rotated.by_role["case"].startswith("PSN-2-")
    # Another tenant's identical case id is another person.
    assert pseudonymise(KEY_1, "other", SLIDE, ids).primary != first.primary


def test_without_identifiers_the_slide_id_gives_the_primary_and_no_vault_row() -> None:
    names = pseudonymise(KEY_1, "acme", SLIDE, SlideIdentifiers())
    assert names.by_role == {} and names.entries == ()
    assert names.primary == pseudonym(KEY_1, "acme", "slide", str(SLIDE))


def test_artefact_keys_are_deterministic() -> None:
    assert artefact_name(SlideFormat.APERIO_SVS, "slide", series=False) == "slide.svs"
    assert artefact_name(SlideFormat.OME_TIFF, "slide", series=False) == "slide.ome.tiff"
    assert artefact_name(SlideFormat.DICOM_WSI, "2.25.1.dcm", series=True) == "dicom/2.25.1.dcm"
    assert content_type("dicom/2.25.1.dcm") == "application/dicom"
    assert content_type("slide.svs") == "image/tiff"

"""Which identifiers a slide has, and what its output is scanned for."""

from __future__ import annotations

import json

from slidestream_contracts.quarantine import QuarantineManifestV1
from slidestream_deid.domain.identifiers import (
    SlideIdentifiers,
    filename_tokens,
    identifiers_from,
    parse_tus_info,
    scan_tokens,
)

MANIFEST = {
    "filename": "Quixwell_Jonah_S24-99431.svs",
    "sha256": "0" * 64,
    "case_id": "CASE-S24-99431",
    "specimen_id": "SPEC-99431-A1",
    "species": "human",
    "organ": "colon",
    "stain": "H&E",
    "extra": {
        "patient_id": "MRN-7781-2290",
        "barcode": "BARCODE-88-1234-XQ",
        "accession_number": "ACC-S24-99431",
        "scanner_note": "fine",
    },
}


def test_manifest_identifiers_by_role_and_the_rest() -> None:
    ids = identifiers_from(QuarantineManifestV1.model_validate(MANIFEST), None)
    assert ids.by_role() == {
        "case": "CASE-S24-99431",
        "specimen": "SPEC-99431-A1",
        "patient": "MRN-7781-2290",
    }
    assert ids.barcodes == ("BARCODE-88-1234-XQ",)
    assert ids.others == ("ACC-S24-99431",)
    values = ids.values()
    assert "Quixwell_Jonah_S24-99431" in values  # the stem of the file name
    assert "Quixwell_Jonah_S24-99431.svs" in values
    # Tissue descriptions and free notes identify nobody.
    assert not {"human", "colon", "H&E", "fine"} & set(values)


def test_client_filename_wins_and_manifest_name_is_still_scanned() -> None:
    ids = identifiers_from(QuarantineManifestV1.model_validate(MANIFEST), "C:\\scans\\other.svs")
    assert ids.filename == "C:\\scans\\other.svs"
    values = ids.values()
    assert "other.svs" in values and "other" in values
    assert "Quixwell_Jonah_S24-99431" in values


def test_identifier_values_stay_out_of_repr() -> None:
    ids = identifiers_from(QuarantineManifestV1.model_validate(MANIFEST), None)
    text = repr(ids) + repr(scan_tokens(ids, ["Operator Brynhild Zaetz"], []))
    for value in ("CASE-S24", "MRN-7781", "BARCODE-88", "Quixwell", "Brynhild"):
        assert value not in text


def test_tus_info_filename() -> None:
    info = {"ID": "x", "MetaData": {"filename": "Quixwell.svs", "filetype": "image/tiff"}}
    assert parse_tus_info(json.dumps(info).encode()) == "Quixwell.svs"
    assert parse_tus_info(b"{}") is None
    assert parse_tus_info(b"garbage") is None


def test_filename_tokens_strip_paths_and_extensions() -> None:
    assert filename_tokens("a/b/S24-1.ome.tiff") == ["S24-1.ome.tiff", "S24-1"]
    assert filename_tokens(None) == []


def test_scan_tokens_split_by_length_and_exempt_kept_vendor_values() -> None:
    ids = SlideIdentifiers(filename="x.svs", case_id="C-12", specimen_id="SPECIMEN-1")
    tokens = scan_tokens(
        ids,
        removed_values=["Hamamatsu", "Operator Brynhild Zaetz", "short"],
        retained_metadata=["Make = Hamamatsu"],
    )
    # Short identifiers are searched only in metadata (as words), never in tile bytes.
    assert "C-12" in tokens.metadata_tokens and "C-12" not in tokens.byte_tokens
    assert "SPECIMEN-1" in tokens.byte_tokens
    assert "Operator Brynhild Zaetz" in tokens.byte_tokens
    # A removed value the output still shows as a kept field is a vendor constant, not PHI...
    assert "Hamamatsu" not in tokens.byte_tokens
    # ...but an identifier is always searched, wherever it shows up.
    kept = scan_tokens(ids, [], ["Note = SPECIMEN-1"])
    assert "SPECIMEN-1" in kept.byte_tokens
    # Longest first; duplicates (ignoring case) once.
    again = scan_tokens(ids, ["specimen-1", "SPECIMEN-1"], [])
    assert [t.casefold() for t in again.byte_tokens].count("specimen-1") == 1
    assert list(again.byte_tokens) == sorted(again.byte_tokens, key=len, reverse=True)

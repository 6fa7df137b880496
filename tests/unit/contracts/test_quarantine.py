"""The quarantine manifest contract between upload (writer) and deid (reader)."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from slidestream_contracts.quarantine import (
    MAX_MANIFEST_BYTES,
    QuarantineManifestError,
    QuarantineManifestV1,
    slide_object_key,
    tus_info_key,
)

# The exact shape upload stored before the contract existed (json.dumps, sort_keys=True, no
# version field): manifests of that shape may still wait in quarantine.
STORED_BEFORE_V1 = {
    "case_id": "CASE-S24-99431",
    "extra": {"patient_id": "MRN-7781-2290"},
    "filename": "Quixwell_Jonah_S24-99431.svs",
    "organ": "colon",
    "sha256": "0" * 64,
    "species": "human",
    "specimen_id": None,
    "stain": "H&E",
}


def test_manifests_stored_before_the_version_field_still_read() -> None:
    content = json.dumps(STORED_BEFORE_V1, sort_keys=True).encode()
    manifest = QuarantineManifestV1.from_json_bytes(content)
    assert manifest.schema_version == 1
    assert manifest.case_id == "CASE-S24-99431"
    assert manifest.extra == {"patient_id": "MRN-7781-2290"}


def test_round_trip_carries_the_version() -> None:
    manifest = QuarantineManifestV1(filename="a.svs", sha256="a" * 64, stain="H&E")
    stored = json.loads(manifest.to_json_bytes())
    assert stored["schema_version"] == QuarantineManifestV1.SCHEMA_VERSION
    assert QuarantineManifestV1.from_json_bytes(manifest.to_json_bytes()) == manifest


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[1, 2]",
        b"\xff\xfe",
        json.dumps({**STORED_BEFORE_V1, "schema_version": 2}).encode(),
        json.dumps({**STORED_BEFORE_V1, "surname": "Quixwell"}).encode(),
        json.dumps({**STORED_BEFORE_V1, "sha256": "Quixwell"}).encode(),
        b"{" + b" " * MAX_MANIFEST_BYTES + b"}",
    ],
)
def test_other_documents_are_refused_without_their_values(content: bytes) -> None:
    with pytest.raises(QuarantineManifestError) as refused:
        QuarantineManifestV1.from_json_bytes(content)
    assert "Quixwell" not in str(refused.value)
    assert refused.value.__cause__ is None


def test_object_keys() -> None:
    slide_id = UUID("0190b3c4-1d2e-7f00-8000-000000000001")
    key = slide_object_key("acme", slide_id, "original")
    assert key == "acme/0190b3c4-1d2e-7f00-8000-000000000001/original"
    assert tus_info_key(key) == f"{key}.info"

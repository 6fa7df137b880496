"""Upload's reads and writes in quarantine: inspection with slidestream_wsi's sniffer and zip
policy, the manifest row it leaves for deid, and removal of a refused upload."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from uuid import UUID

import pytest

from slidestream_contracts.events import SlideFormat
from slidestream_contracts.quarantine import QuarantineManifestV1
from slidestream_upload.adapters.tables import BatchItemRow
from slidestream_upload.quarantine import inspect_upload, remove_upload, write_manifest
from tests.support.fakes import MemoryStore

BUCKET = "quarantine"
KEY = "acme/0190b3c4-1d2e-7f00-8000-000000000001/original"
SLIDE_ID = UUID("0190b3c4-1d2e-7f00-8000-000000000001")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DICOM_HEAD = b"\x00" * 128 + b"DICM" + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "container", "reason"),
    [
        (DICOM_HEAD, SlideFormat.DICOM, None),
        (b"II*\x00" + b"\x00" * 200, SlideFormat.TIFF, None),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, None, "unsupported-format"),
        (_zip({"series/1.dcm": DICOM_HEAD, "series/2.dcm": DICOM_HEAD}), SlideFormat.ZIP, None),
        (_zip({"../../etc/cron.d/x": b"x"}), SlideFormat.ZIP, "archive-path-traversal"),
        (_zip({"bomb.dcm": bytes(20 * 1024 * 1024)}), SlideFormat.ZIP, "archive-bomb"),
        (_zip({"a.dcm": b"a"})[:-30], SlideFormat.ZIP, "corrupt-archive"),
    ],
)
def test_inspection(data: bytes, container: SlideFormat | None, reason: str | None) -> None:
    store = MemoryStore()
    store.put_bytes(BUCKET, KEY, data)
    inspection = inspect_upload(store, BUCKET, KEY, len(data), None)
    assert (inspection.container, inspection.reason) == (container, reason)
    assert inspection.sha256 == hashlib.sha256(data).hexdigest()


def test_a_declared_checksum_that_differs_is_refused() -> None:
    store = MemoryStore()
    store.put_bytes(BUCKET, KEY, DICOM_HEAD)
    inspection = inspect_upload(store, BUCKET, KEY, len(DICOM_HEAD), "0" * 64)
    assert inspection.reason == "checksum-mismatch"


def test_the_manifest_row_is_stored_as_the_contract_deid_reads() -> None:
    store = MemoryStore()
    item = BatchItemRow(
        batch_id=UUID(int=1),
        filename="S24-1.svs",
        sha256="a" * 64,
        case_id="CASE-1",
        stain="H&E",
        extra_json=json.dumps({"patient_id": "MRN-1"}),
    )
    ref = write_manifest(store, BUCKET, "acme", SLIDE_ID, item)
    assert ref.key == f"acme/{SLIDE_ID}/manifest.json"
    stored = QuarantineManifestV1.from_json_bytes(store.objects[(BUCKET, ref.key)])
    assert (stored.case_id, stored.stain, stored.extra) == (
        "CASE-1",
        "H&E",
        {"patient_id": "MRN-1"},
    )


def test_removal_leaves_nothing_of_the_upload() -> None:
    store = MemoryStore()
    for key in (KEY, f"{KEY}.info", f"{KEY}.part"):
        store.put_bytes(BUCKET, key, b"x")
    remove_upload(store, BUCKET, KEY)
    assert store.objects == {}

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
from slidestream_platform.objectstore.ranged import RANGE_BLOCK_BYTES
from slidestream_upload.adapters.tables import BatchItemRow
from slidestream_upload.quarantine import inspect_upload, remove_upload, write_manifest
from slidestream_wsi.detect import SNIFF_BYTES
from tests.support.fakes import MemoryStore, SparseStore
from tests.support.zips import huge_directory_zip

BUCKET = "quarantine"
KEY = "acme/0190b3c4-1d2e-7f00-8000-000000000001/original"
SLIDE_ID = UUID("0190b3c4-1d2e-7f00-8000-000000000001")
TAIL_BUDGET_BYTES = SNIFF_BYTES + 2 * RANGE_BLOCK_BYTES
"""The head sniffed, and the ranged blocks that hold the end records (at most two)."""


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DICOM_HEAD = b"\x00" * 128 + b"DICM" + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "container", "reason", "hashed"),
    [
        (DICOM_HEAD, SlideFormat.DICOM, None, True),
        (b"II*\x00" + b"\x00" * 200, SlideFormat.TIFF, None, True),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, None, "unsupported-format", True),
        (
            _zip({"series/1.dcm": DICOM_HEAD, "series/2.dcm": DICOM_HEAD}),
            SlideFormat.ZIP,
            None,
            True,
        ),
        (_zip({"../../etc/cron.d/x": b"x"}), SlideFormat.ZIP, "archive-path-traversal", True),
        (_zip({"bomb.dcm": bytes(20 * 1024 * 1024)}), SlideFormat.ZIP, "archive-bomb", True),
        # No end record: refused from the tail, before the object is hashed.
        (_zip({"a.dcm": b"a"})[:-30], SlideFormat.ZIP, "corrupt-archive", False),
    ],
)
def test_inspection(
    data: bytes, container: SlideFormat | None, reason: str | None, hashed: bool
) -> None:
    store = MemoryStore()
    store.put_bytes(BUCKET, KEY, data)
    inspection = inspect_upload(store, BUCKET, KEY, len(data), None)
    assert (inspection.container, inspection.reason) == (container, reason)
    assert inspection.sha256 == (hashlib.sha256(data).hexdigest() if hashed else None)


def test_a_zip_declaring_ten_million_entries_is_refused_from_its_tail() -> None:
    """Issue 16: no hash of the whole object and no ZipFile (which read the whole directory
    into memory) before the end records are checked against the caps."""
    archive = huge_directory_zip(10_000_000, read_budget_bytes=TAIL_BUDGET_BYTES)
    store = SparseStore()
    store.put_sparse(BUCKET, KEY, archive)
    inspection = inspect_upload(store, BUCKET, KEY, archive.size_bytes, None)
    assert (inspection.container, inspection.reason) == (
        SlideFormat.ZIP,
        "archive-too-many-members",
    )
    assert inspection.sha256 is None
    assert archive.served_bytes <= TAIL_BUDGET_BYTES


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

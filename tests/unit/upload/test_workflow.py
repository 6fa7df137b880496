"""Finalization of a complete upload over in-memory fakes: verify, then publish once or reject."""

from __future__ import annotations

from slidestream_contracts.events import SlideFactsV1, SlideRejectedV1, SlideUploadedV1
from slidestream_platform.objectstore.ranged import RANGE_BLOCK_BYTES
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.domain.manifest import ManifestRow
from slidestream_wsi.detect import SNIFF_BYTES
from tests.support.upload_workflow import upload_harness
from tests.support.zips import huge_directory_zip

BUCKET = "quarantine"
TEN_MILLION = 10_000_000
TAIL_BUDGET_BYTES = SNIFF_BYTES + 2 * RANGE_BLOCK_BYTES
"""The head sniffed, and the ranged blocks that hold the end records (at most two)."""
DICOM_HEAD = b"\x00" * 128 + b"DICM" + b"\x00" * 64


async def test_a_zip_declaring_ten_million_entries_is_rejected_from_its_tail(
    uploads: UploadRepository,
) -> None:
    """Issue 16: its central directory (460 MB, ten million ZipInfo) crashed the service; the
    end records say so in the object's last bytes, which is all that is read."""
    harness = upload_harness(uploads)
    archive = huge_directory_zip(TEN_MILLION, read_budget_bytes=TAIL_BUDGET_BYTES)
    row = harness.add_upload(archive.size_bytes)
    harness.store.put_sparse(BUCKET, row.object_key, archive)

    await harness.workflow.finalize(row.slide_id)

    stored = harness.stored(row)
    assert (stored.state, stored.reason) == ("rejected", "archive-too-many-members")
    rejected = [e for e, _ in harness.publisher.sent if isinstance(e, SlideRejectedV1)]
    assert [e.reason for e in rejected] == ["archive-too-many-members"]
    assert archive.served_bytes <= TAIL_BUDGET_BYTES
    assert (BUCKET, row.object_key) not in harness.store.sparse


async def test_a_valid_upload_is_published_after_one_attempt(
    uploads: UploadRepository,
) -> None:
    harness = upload_harness(uploads)
    row = harness.add_upload(len(DICOM_HEAD))
    harness.store.put_bytes(BUCKET, row.object_key, DICOM_HEAD)

    await harness.workflow.finalize(row.slide_id)

    stored = harness.stored(row)
    assert (stored.state, stored.verify_attempts) == ("published", 1)
    uploaded = [e for e, _ in harness.publisher.sent if isinstance(e, SlideUploadedV1)]
    assert [e.slide_id for e in uploaded] == [row.slide_id]


async def test_the_partners_declared_facts_travel_with_the_uploaded_event(
    uploads: UploadRepository,
) -> None:
    """Issue 18: a slide whose file lacks its spacing carries the partner's ``--meta``."""
    harness = upload_harness(uploads)
    meta = {"mpp_um": "0.5 µm", "scanner": "Scanner X", "study": "S1"}
    row = harness.add_upload(len(DICOM_HEAD), meta=meta)
    harness.store.put_bytes(BUCKET, row.object_key, DICOM_HEAD)

    await harness.workflow.finalize(row.slide_id)

    uploaded = [e for e, _ in harness.publisher.sent if isinstance(e, SlideUploadedV1)]
    assert [e.declared for e in uploaded] == [SlideFactsV1(mpp_um=0.5, scanner="Scanner X")]


async def test_a_slide_without_declared_facts_carries_none(uploads: UploadRepository) -> None:
    harness = upload_harness(uploads)
    row = harness.add_upload(len(DICOM_HEAD), meta={"study": "S1"})
    harness.store.put_bytes(BUCKET, row.object_key, DICOM_HEAD)

    await harness.workflow.finalize(row.slide_id)

    uploaded = [e for e, _ in harness.publisher.sent if isinstance(e, SlideUploadedV1)]
    assert [e.declared for e in uploaded] == [None]


async def test_a_manifest_label_holding_an_identifier_is_not_published(
    uploads: UploadRepository,
) -> None:
    """Fault suite scenario o: a manifest's free-text ``project`` that repeated the row's
    case id travelled on slides.uploaded.v1 into the catalog and its search, the identifier
    untouched. A label holding any of the row's identifiers is left out of the event."""
    harness = upload_harness(uploads)
    case_id = "CASE-Ferroway-7719"
    manifest = ManifestRow(
        filename="slide.zip",
        sha256="0" * 64,
        case_id=case_id,
        specimen_id="SPEC-Q-88",
        organ="colon",
        stain="H&E for spec-q-88",
        extra={"project": f"Study for {case_id.lower()}"},
    )
    batch_id = uploads.create_batch("acme", [manifest])
    row = harness.add_upload(len(DICOM_HEAD), batch_id=batch_id)
    harness.store.put_bytes(BUCKET, row.object_key, DICOM_HEAD)

    await harness.workflow.finalize(row.slide_id)

    [uploaded] = [e for e, _ in harness.publisher.sent if isinstance(e, SlideUploadedV1)]
    assert (uploaded.project, uploaded.stain, uploaded.organ) == (None, None, "colon")
    published = uploaded.model_dump_json().lower()
    assert "ferroway" not in published and "spec-q-88" not in published
    assert uploaded.manifest is not None  # the row itself stays in quarantine, for deid

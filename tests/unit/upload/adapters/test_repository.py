"""The upload table's state changes that hooks and the reconciler race for (``uploads``, the
table on SQLite migrated to head, is the upload unit tests' fixture)."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from slidestream_platform.db import DatabaseSettings, make_engine
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import UploadRow, UploadState


def _receiving(uploads: UploadRepository) -> UploadRow:
    slide_id = uuid4()
    row = UploadRow(
        slide_id=slide_id,
        tenant="acme",
        object_key=f"acme/{slide_id}/original",
        filename="slide.svs",
        declared_size_bytes=1000,
        state=UploadState.RECEIVING.value,
    )
    uploads.add_upload(row)
    return row


def test_a_client_cancellation_ends_a_receiving_upload(uploads: UploadRepository) -> None:
    row = _receiving(uploads)
    uploads.cancel_if_receiving(row.slide_id, detail="the client cancelled the upload")
    stored = uploads.upload(row.slide_id)
    assert stored is not None
    assert (stored.state, stored.reason) == (UploadState.TERMINATED.value, "terminated")
    assert stored.finished_at is not None


def test_the_terminate_hook_of_an_expiry_never_overwrites_it(uploads: UploadRepository) -> None:
    """The reconciler expires an upload by terminating it in tusd, which fires the
    post-terminate hook; whichever lands first, the upload ends expired."""
    row = _receiving(uploads)
    uploads.end(row.slide_id, UploadState.EXPIRED, reason="expired", detail="ttl", sha256=None)
    uploads.cancel_if_receiving(row.slide_id, detail="the client cancelled the upload")
    stored = uploads.upload(row.slide_id)
    assert stored is not None
    assert (stored.state, stored.reason) == (UploadState.EXPIRED.value, "expired")


def test_verification_attempts_are_counted_durably(
    uploads: UploadRepository, tmp_path: Path
) -> None:
    """Committed as each attempt begins: a process that dies mid-verification leaves its count,
    which the next process (another engine on the same database) sees."""
    row = _receiving(uploads)
    assert [uploads.count_verify_attempt(row.slide_id) for _ in range(2)] == [1, 2]
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'upload.db'}"), "upload")
    assert UploadRepository(engine).count_verify_attempt(row.slide_id) == 3

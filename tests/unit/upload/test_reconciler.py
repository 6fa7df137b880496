"""The reconciliation loop re-drives unfinished uploads; one whose verification keeps failing
ends rejected after a bounded number of attempts instead of being replayed forever."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from slidestream_contracts.events import SlideRejectedV1, SlideStatusV1
from slidestream_contracts.states import SlideState
from slidestream_upload.adapters.repository import UploadRepository
from tests.support.fakes import SparseStore
from tests.support.upload_workflow import upload_harness

BUCKET = "quarantine"
MAX_ATTEMPTS = 3
DICOM_HEAD = b"\x00" * 128 + b"DICM" + b"\x00" * 64


class VerificationCrashError(Exception):
    """What the process died of, as far as the test can tell (a real crash leaves no trace)."""


@dataclass
class CrashingStore(SparseStore):
    """Every full read of an upload's bytes fails, as a verification that exhausts memory."""

    full_reads: int = 0

    @contextmanager
    def open_stream(
        self, bucket: str, key: str, *, offset: int = 0, length: int | None = None
    ) -> Iterator[BinaryIO]:
        if length is None:
            self.full_reads += 1
            raise VerificationCrashError(key)
        with super().open_stream(bucket, key, offset=offset, length=length) as stream:
            yield stream


async def test_a_verification_that_keeps_failing_is_rejected_not_replayed(
    uploads: UploadRepository,
) -> None:
    store = CrashingStore()
    harness = upload_harness(uploads, store, max_verify_attempts=MAX_ATTEMPTS)
    row = harness.add_upload(len(DICOM_HEAD))
    store.put_bytes(BUCKET, row.object_key, DICOM_HEAD)

    for _ in range(MAX_ATTEMPTS):
        await harness.reconciler.reconcile_once()  # logs the failure and goes on
        assert harness.stored(row).state == "receiving"
    assert store.full_reads == MAX_ATTEMPTS

    await harness.reconciler.reconcile_once()

    stored = harness.stored(row)
    assert (stored.state, stored.reason) == ("rejected", "upload-verification-failed")
    assert store.full_reads == MAX_ATTEMPTS  # refused without another read
    events = [e for e, _ in harness.publisher.sent]
    assert [e.reason for e in events if isinstance(e, SlideRejectedV1)] == [
        "upload-verification-failed"
    ]
    assert [e.state for e in events if isinstance(e, SlideStatusV1)] == [SlideState.REJECTED]
    assert (BUCKET, row.object_key) not in store.objects

    await harness.reconciler.reconcile_once()  # ended: nothing more is tried or sent
    assert store.full_reads == MAX_ATTEMPTS
    assert len(harness.publisher.sent) == len(events)

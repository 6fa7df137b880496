"""The upload workflow and reconciler over in-memory fakes of the store and the publisher (the
service's own table stays real: SQLite, migrated to head), for unit tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID, uuid4

from slidestream_platform.decisions import DecisionPublisher
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import UploadRow, UploadState
from slidestream_upload.adapters.tusd import TusdAdmin
from slidestream_upload.reconciler import UploadReconciler
from slidestream_upload.settings import UploadSettings
from slidestream_upload.workflow import EVENT_ID_NAMESPACE, UploadWorkflow
from tests.support.fakes import FakeVerifier, RecordingPublisher, SparseStore

UNREACHABLE_TUS_URL = "http://127.0.0.1:9/files/"
"""The reconciler's tusd client: only expiries call it, and these tests expire nothing."""


@dataclass
class UploadHarness:
    settings: UploadSettings
    uploads: UploadRepository
    store: SparseStore
    publisher: RecordingPublisher
    workflow: UploadWorkflow
    reconciler: UploadReconciler

    def add_upload(
        self,
        size_bytes: int,
        *,
        meta: dict[str, str] | None = None,
        batch_id: UUID | None = None,
    ) -> UploadRow:
        """A receiving upload of ``size_bytes`` (storing its bytes is the test's part), with the
        partner's ``--meta`` pairs, of the batch ``batch_id`` if given."""
        slide_id = uuid4()
        row = UploadRow(
            slide_id=slide_id,
            tenant="acme",
            object_key=f"acme/{slide_id}/original",
            filename="slide.zip",
            declared_size_bytes=size_bytes,
            metadata_json=json.dumps(meta or {}),
            batch_id=batch_id,
            state=UploadState.RECEIVING.value,
        )
        self.uploads.add_upload(row)
        return row

    def stored(self, row: UploadRow) -> UploadRow:
        stored = self.uploads.upload(row.slide_id)
        assert stored is not None
        return stored


def upload_harness(
    uploads: UploadRepository, store: SparseStore | None = None, **settings: object
) -> UploadHarness:
    config = UploadSettings(tus_url=UNREACHABLE_TUS_URL, **settings)  # type: ignore[arg-type]
    store = store if store is not None else SparseStore()
    publisher = RecordingPublisher()
    decisions = DecisionPublisher(
        publisher=publisher, verifier=FakeVerifier(), namespace=EVENT_ID_NAMESPACE
    )
    workflow = UploadWorkflow(
        settings=config,
        uploads=uploads,
        store=store,
        publisher=publisher,  # type: ignore[arg-type]
        decisions=decisions,
    )
    reconciler = UploadReconciler(
        settings=config,
        workflow=workflow,
        uploads=uploads,
        store=store,
        tusd=TusdAdmin(UNREACHABLE_TUS_URL),
    )
    return UploadHarness(config, uploads, store, publisher, workflow, reconciler)

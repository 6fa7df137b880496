"""The reconciliation loop: finish what tusd's hooks missed, expire what partners abandoned.

A post-finish hook is lost when the service is down or killed mid-hook; the upload is then
complete in quarantine but never finalized. Every ``reconcile_interval_s`` the loop finalizes
such uploads (:meth:`UploadWorkflow.finalize` is idempotent and leased, so racing a hook or
another replica is safe) and expires uploads still receiving after ``upload_ttl_s``. An upload
whose verification keeps failing, or keeps killing the process, is not re-driven forever: the
workflow counts each attempt in the upload's row before it begins and refuses the upload
(``upload-verification-failed``) past ``max_verify_attempts``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from slidestream_platform.objectstore.port import ObjectStore
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import UploadRow, UploadState
from slidestream_upload.adapters.tusd import TusdAdmin
from slidestream_upload.quarantine import remove_upload
from slidestream_upload.settings import UploadSettings
from slidestream_upload.workflow import UploadWorkflow

logger = logging.getLogger(__name__)


class UploadReconciler:
    def __init__(
        self,
        *,
        settings: UploadSettings,
        workflow: UploadWorkflow,
        uploads: UploadRepository,
        store: ObjectStore,
        tusd: TusdAdmin,
    ) -> None:
        self._settings = settings
        self._workflow = workflow
        self._uploads = uploads
        self._store = store
        self._tusd = tusd

    async def reconcile_once(self) -> None:
        """Finish what hooks missed; expire what partners abandoned."""
        now = datetime.now(UTC)
        ttl = timedelta(seconds=self._settings.upload_ttl_s)
        for row in await asyncio.to_thread(self._uploads.unfinished):
            created = (
                row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            )
            try:
                if row.state == UploadState.RECEIVING and now - created > ttl:
                    await self._expire(row)
                else:
                    await self._workflow.finalize(row.slide_id)
            except Exception:  # one bad upload must not stop the loop for the others
                logger.exception("reconciliation failed", extra={"slide_id": str(row.slide_id)})

    async def _expire(self, row: UploadRow) -> None:
        bucket = self._settings.quarantine_bucket
        info = await asyncio.to_thread(self._store.stat, bucket, row.object_key)
        if info is not None and info.size_bytes >= row.declared_size_bytes:
            await self._workflow.finalize(row.slide_id)  # complete after all: its hook was lost
            return
        if row.tus_id is not None:
            await self._tusd.terminate(
                row.tus_id, token=self._settings.tusd_internal_token.get_secret_value()
            )
        await asyncio.to_thread(remove_upload, self._store, bucket, row.object_key)
        await asyncio.to_thread(
            self._uploads.end,
            row.slide_id,
            UploadState.EXPIRED,
            reason="expired",
            detail=f"not finished within {self._settings.upload_ttl_s:.0f} s",
            sha256=None,
        )
        logger.info("upload expired", extra={"tenant": row.tenant, "slide_id": str(row.slide_id)})

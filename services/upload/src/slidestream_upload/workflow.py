"""The upload control path's use cases: admit, track, verify, publish once, reject, expire.

Hooks from tusd and the reconciliation loop call these; the decisions themselves are pure
functions in ``domain/``. Every step is idempotent: tusd retries hooks, the reconciler re-runs
finalization for uploads whose post-finish hook was lost (service down, killed mid-hook), and
replicas race for the same upload (a database lease decides).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

import uuid_utils

from slidestream_contracts.events import (
    ObjectRef,
    SlideFormat,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.states import SlideState, Step
from slidestream_platform.broker import EventPublisher
from slidestream_platform.decisions import DecisionPublisher
from slidestream_platform.objectstore.port import ObjectStore
from slidestream_platform.publication import PublishMark
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import UploadRow, UploadState, utc_now
from slidestream_upload.adapters.tusd import HookEvent, TusdAdmin, hook_response, object_key_of
from slidestream_upload.domain.admission import UploadRequest, admit
from slidestream_upload.domain.archives import ZipMember, check_members
from slidestream_upload.domain.filenames import sanitize_filename
from slidestream_upload.domain.sniff import SNIFF_BYTES, sniff_container
from slidestream_upload.domain.tokens import bearer_token
from slidestream_upload.settings import UploadSettings

logger = logging.getLogger(__name__)

HASH_CHUNK_BYTES = 8 * 1024 * 1024
SLIDE_ID_HEADER = "Slidestream-Slide-Id"
EVENT_ID_NAMESPACE = UUID("6f1d8a52-4c1e-4f59-9a37-6b0f2f1f7a10")
"""Namespace of the deterministic event ids (UUIDv5 of the object key): one upload, one id."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the bytes turned out to be, or why they are refused."""

    container: SlideFormat | None
    sha256: str
    reason: str | None = None
    detail: str = ""


def _metadata(hook: HookEvent) -> dict[str, str]:
    return {k: v for k, v in hook.upload.metadata.items() if isinstance(v, str)}


class _RangeReader(io.RawIOBase):
    """A seekable view of an object through ranged GETs, so :mod:`zipfile` can read only the
    central directory of a multi-gigabyte archive."""

    def __init__(self, store: ObjectStore, bucket: str, key: str, size: int) -> None:
        self._store, self._bucket, self._key, self._size = store, bucket, key, size
        self._position = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        length = min(len(buffer), self._size - self._position)
        if length <= 0:
            return 0
        with self._store.open_stream(
            self._bucket, self._key, offset=self._position, length=length
        ) as stream:
            data = stream.read(length)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


class UploadWorkflow:
    def __init__(
        self,
        *,
        settings: UploadSettings,
        uploads: UploadRepository,
        store: ObjectStore,
        publisher: EventPublisher,
        decisions: DecisionPublisher,
        tusd: TusdAdmin,
    ) -> None:
        self._settings = settings
        self._uploads = uploads
        self._store = store
        self._publisher = publisher
        self._decisions = decisions
        self._tusd = tusd

    # -- tusd hooks --------------------------------------------------------------------------

    def _tenant_of(self, hook: HookEvent) -> str | None:
        token = bearer_token(hook.http_request.first("Authorization"))
        return self._uploads.tenant_for_token(token) if token else None

    async def pre_create(self, hook: HookEvent) -> dict[str, object]:
        tenant = await asyncio.to_thread(self._tenant_of, hook)
        if tenant is None:
            return hook_response(
                reject=True,
                status_code=401,
                body={"reason": "unauthorized", "message": "missing, unknown or revoked token"},
            )
        metadata = _metadata(hook)
        request = UploadRequest(
            declared_size_bytes=None if hook.upload.size_is_deferred else hook.upload.size,
            declared_sha256=(metadata.get("sha256") or "").lower() or None,
            filename=sanitize_filename(metadata.get("filename", "")),
        )
        quota_bytes, used_bytes = await asyncio.to_thread(self._uploads.quota, tenant)
        refusal = admit(
            request,
            max_upload_bytes=self._settings.max_upload_bytes,
            quota_bytes=quota_bytes,
            used_bytes=used_bytes,
        )
        if refusal is not None:
            logger.info("upload refused", extra={"tenant": tenant, "reason": refusal.reason})
            return hook_response(
                reject=True,
                status_code=refusal.status_code,
                body={"reason": refusal.reason, "message": refusal.message},
            )
        batch_id = _uuid_or_none(metadata.get("batch_id"))
        if batch_id is not None:
            batch = await asyncio.to_thread(self._uploads.batch, batch_id)
            if batch is None or batch.tenant != tenant:
                return hook_response(
                    reject=True,
                    status_code=404,
                    body={"reason": "unknown-batch", "message": "no such batch for this tenant"},
                )
        extra = _json_object(metadata.get("meta"))
        slide_id = UUID(str(uuid_utils.uuid7()))
        object_key = f"{tenant}/{slide_id}/original"
        row = UploadRow(
            slide_id=slide_id,
            tenant=tenant,
            object_key=object_key,
            filename=request.filename,
            declared_size_bytes=request.declared_size_bytes or 0,
            declared_sha256=request.declared_sha256,
            batch_id=batch_id,
            metadata_json=json.dumps(extra, sort_keys=True),
            state=UploadState.RECEIVING.value,
        )
        await asyncio.to_thread(self._uploads.add_upload, row)
        logger.info("upload admitted", extra={"tenant": tenant, "slide_id": str(slide_id)})
        # Only harmless metadata stays with tusd's copy (its .info object in quarantine).
        kept = {"filename": request.filename, "slide_id": str(slide_id), "tenant": tenant}
        return hook_response(
            change_id=object_key,
            change_metadata=kept,
            headers={SLIDE_ID_HEADER: str(slide_id)},
        )

    async def post_create(self, hook: HookEvent) -> None:
        row = await asyncio.to_thread(self._uploads.upload_by_key, object_key_of(hook.upload.id))
        if row is not None:
            await asyncio.to_thread(self._uploads.record_created, row.slide_id, hook.upload.id)

    async def post_receive(self, hook: HookEvent) -> None:
        row = await asyncio.to_thread(self._uploads.upload_by_key, object_key_of(hook.upload.id))
        if row is not None:
            await asyncio.to_thread(self._uploads.record_progress, row.slide_id, hook.upload.offset)

    async def pre_terminate(self, hook: HookEvent) -> dict[str, object]:
        token = bearer_token(hook.http_request.first("Authorization"))
        if token is not None and token == self._settings.tusd_internal_token.get_secret_value():
            return hook_response()
        tenant = await asyncio.to_thread(self._tenant_of, hook)
        row = await asyncio.to_thread(self._uploads.upload_by_key, object_key_of(hook.upload.id))
        if tenant is None or row is None or row.tenant != tenant:
            return hook_response(
                reject_termination=True,
                status_code=404,
                body={"reason": "not-found", "message": "no such upload for this token"},
            )
        return hook_response()

    async def post_terminate(self, hook: HookEvent) -> None:
        row = await asyncio.to_thread(self._uploads.upload_by_key, object_key_of(hook.upload.id))
        if row is not None and row.state == UploadState.RECEIVING:
            await asyncio.to_thread(
                self._uploads.end,
                row.slide_id,
                UploadState.TERMINATED,
                reason="terminated",
                detail="the client cancelled the upload",
                sha256=None,
            )

    async def post_finish(self, hook: HookEvent) -> UUID | None:
        row = await asyncio.to_thread(self._uploads.upload_by_key, object_key_of(hook.upload.id))
        if row is None:
            return None
        if row.tus_id is None:
            await asyncio.to_thread(self._uploads.record_created, row.slide_id, hook.upload.id)
        await asyncio.to_thread(self._uploads.record_progress, row.slide_id, hook.upload.offset)
        return row.slide_id

    # -- finalization ------------------------------------------------------------------------

    async def finalize(self, slide_id: UUID) -> None:
        """Verify a complete upload and publish ``slides.uploaded.v1`` exactly once (or reject)."""
        lease = timedelta(seconds=self._settings.finalize_lease_s)
        row = await asyncio.to_thread(self._uploads.claim, slide_id, lease=lease)
        if row is None:
            return
        heartbeat = asyncio.create_task(self._keep_lease(slide_id, lease))
        try:
            if row.state == UploadState.RECEIVING:
                info = await asyncio.to_thread(
                    self._store.stat, self._settings.quarantine_bucket, row.object_key
                )
                if info is None or info.size_bytes < row.declared_size_bytes:
                    return  # not complete yet: tusd still holds parts
                verdict = await asyncio.to_thread(self._inspect, row, info.size_bytes)
                if verdict.reason is not None:
                    await self._reject(row, verdict)
                    return
                assert verdict.container is not None
                await self._begin_publishing(row, verdict)
                row = await asyncio.to_thread(self._uploads.upload, slide_id)
                assert row is not None
            await self._publish_once(row)
        finally:
            heartbeat.cancel()
            await asyncio.to_thread(self._uploads.release, slide_id)

    async def _keep_lease(self, slide_id: UUID, lease: timedelta) -> None:
        """Renew the finalization lease while verification (a multi-GB read) runs."""
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            await asyncio.to_thread(self._uploads.renew, slide_id, lease=lease)

    def _inspect(self, row: UploadRow, size_bytes: int) -> Verdict:
        bucket = self._settings.quarantine_bucket
        with self._store.open_stream(bucket, row.object_key, length=SNIFF_BYTES) as stream:
            head = stream.read(SNIFF_BYTES)
        container = sniff_container(head)
        digest = self._sha256(bucket, row.object_key)
        if container is None:
            return Verdict(
                None, digest, "unsupported-format", "not a TIFF, BigTIFF, DICOM or zip file"
            )
        if row.declared_sha256 is not None and digest != row.declared_sha256:
            return Verdict(
                container,
                digest,
                "checksum-mismatch",
                "the stored bytes do not match the declared sha256",
            )
        if container is SlideFormat.ZIP:
            problem = self._zip_problem(bucket, row.object_key, size_bytes)
            if problem is not None:
                return Verdict(container, digest, problem[0], problem[1])
        return Verdict(container, digest)

    def _sha256(self, bucket: str, key: str) -> str:
        digest = hashlib.sha256()
        with self._store.open_stream(bucket, key) as stream:
            while chunk := stream.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        return digest.hexdigest()

    def _zip_problem(self, bucket: str, key: str, size_bytes: int) -> tuple[str, str] | None:
        reader = io.BufferedReader(_RangeReader(self._store, bucket, key, size_bytes), 1 << 20)
        try:
            with zipfile.ZipFile(reader) as archive:
                members = [
                    ZipMember(
                        name=info.filename,
                        compressed_bytes=info.compress_size,
                        uncompressed_bytes=info.file_size,
                        unix_mode=info.external_attr >> 16,
                    )
                    for info in archive.infolist()
                ]
        except (zipfile.BadZipFile, ValueError, EOFError):
            return ("corrupt-archive", "the zip's central directory cannot be read")
        problem = check_members(members)
        return (problem.reason, problem.detail) if problem is not None else None

    async def _reject(self, row: UploadRow, verdict: Verdict) -> None:
        reason = verdict.reason or "rejected"
        logger.info(
            "upload rejected",
            extra={"tenant": row.tenant, "slide_id": str(row.slide_id), "reason": reason},
        )
        await asyncio.to_thread(
            self._uploads.end,
            row.slide_id,
            UploadState.REJECTED,
            reason=reason,
            detail=verdict.detail,
            sha256=verdict.sha256,
        )
        # Nothing of a refused upload stays in quarantine.
        await asyncio.to_thread(self._remove_objects, row.object_key)
        await self._publisher.publish(
            SlideRejectedV1(
                slide_id=row.slide_id,
                tenant=row.tenant,
                step=Step.UPLOAD,
                reason=reason,
                detail=verdict.detail,
            )
        )
        await self._publisher.publish(
            SlideStatusV1(
                slide_id=row.slide_id,
                tenant=row.tenant,
                state=SlideState.REJECTED,
                step=Step.UPLOAD,
                reason=reason,
                detail=verdict.detail,
            )
        )

    def _remove_objects(self, object_key: str) -> None:
        bucket = self._settings.quarantine_bucket
        for key in (object_key, f"{object_key}.info", f"{object_key}.part"):
            self._store.delete(bucket, key)

    def _manifest_ref(self, row: UploadRow) -> tuple[ObjectRef | None, dict[str, str | None]]:
        """Write this slide's manifest row next to it in quarantine (it may identify a patient)."""
        if row.batch_id is None:
            return None, {}
        item = self._uploads.batch_item(row.batch_id, row.filename)
        if item is None:
            return None, {}
        document = {
            "filename": item.filename,
            "sha256": item.sha256,
            "case_id": item.case_id,
            "specimen_id": item.specimen_id,
            "species": item.species,
            "organ": item.organ,
            "stain": item.stain,
            "extra": json.loads(item.extra_json),
        }
        body = json.dumps(document, sort_keys=True).encode()
        ref = self._store.put_stream(
            self._settings.quarantine_bucket,
            f"{row.tenant}/{row.slide_id}/manifest.json",
            io.BytesIO(body),
            len(body),
            content_type="application/json",
        )
        labels = {"species": item.species, "organ": item.organ, "stain": item.stain}
        return ref.to_event_ref(), labels

    def _uploaded_event(self, row: UploadRow) -> SlideUploadedV1:
        assert row.verified_sha256 is not None and row.container_format is not None
        manifest, labels = self._manifest_ref(row)
        finished = row.finished_at or utc_now()
        return SlideUploadedV1(
            slide_id=row.slide_id,
            tenant=row.tenant,
            occurred_at=finished if finished.tzinfo else finished.replace(tzinfo=UTC),
            original=ObjectRef(
                bucket=self._settings.quarantine_bucket,
                key=row.object_key,
                sha256=row.verified_sha256,
                size_bytes=row.declared_size_bytes,
            ),
            container_format=SlideFormat(row.container_format),
            upload_id=row.tus_id or row.object_key,
            batch_id=row.batch_id,
            manifest=manifest,
            species=labels.get("species"),
            organ=labels.get("organ"),
            stain=labels.get("stain"),
        )

    async def _begin_publishing(self, row: UploadRow, verdict: Verdict) -> None:
        assert verdict.container is not None
        probe = row.model_copy(
            update={"verified_sha256": verdict.sha256, "container_format": verdict.container.value}
        )
        event = await asyncio.to_thread(self._uploaded_event, probe)
        mark = await self._decisions.mark([event])
        await asyncio.to_thread(
            self._uploads.begin_publishing,
            row.slide_id,
            event_id=uuid5(EVENT_ID_NAMESPACE, row.object_key),
            mark=mark,
            verified_sha256=verdict.sha256,
            container_format=verdict.container.value,
            finished_at=utc_now(),
        )

    async def _publish_once(self, row: UploadRow) -> None:
        """The decision recorded by :meth:`_begin_publishing` announced once: the row is in
        PUBLISHING only until "published" is recorded, so a row found there is always checked
        against its mark (a crash after Kafka's acknowledgement sends nothing twice)."""
        assert row.event_id is not None and row.verified_sha256 is not None
        assert row.publish_partition is not None and row.publish_from_offset is not None
        event = await asyncio.to_thread(self._uploaded_event, row)
        status = SlideStatusV1(
            slide_id=row.slide_id,
            tenant=row.tenant,
            occurred_at=event.occurred_at,
            state=SlideState.UPLOADED,
            step=Step.UPLOAD,
        )
        status_id = self._decisions.event_id(row.slide_id, row.verified_sha256, status.TOPIC)
        mark = PublishMark(partition=row.publish_partition, from_offset=row.publish_from_offset)
        await self._decisions.announce(
            [(event, row.event_id), (status, status_id)], mark, verify=True
        )
        await asyncio.to_thread(self._uploads.mark_published, row.slide_id)
        logger.info("slide uploaded", extra={"tenant": row.tenant, "slide_id": str(row.slide_id)})

    # -- reconciliation ----------------------------------------------------------------------

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
                    await self.finalize(row.slide_id)
            except Exception:  # one bad upload must not stop the loop for the others
                logger.exception("reconciliation failed", extra={"slide_id": str(row.slide_id)})

    async def _expire(self, row: UploadRow) -> None:
        info = await asyncio.to_thread(
            self._store.stat, self._settings.quarantine_bucket, row.object_key
        )
        if info is not None and info.size_bytes >= row.declared_size_bytes:
            await self.finalize(row.slide_id)  # complete after all: its hook was lost
            return
        if row.tus_id is not None:
            await self._tusd.terminate(
                row.tus_id, token=self._settings.tusd_internal_token.get_secret_value()
            )
        await asyncio.to_thread(self._remove_objects, row.object_key)
        await asyncio.to_thread(
            self._uploads.end,
            row.slide_id,
            UploadState.EXPIRED,
            reason="expired",
            detail=f"not finished within {self._settings.upload_ttl_s:.0f} s",
            sha256=None,
        )
        logger.info("upload expired", extra={"tenant": row.tenant, "slide_id": str(row.slide_id)})


def _uuid_or_none(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


def _json_object(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k)[:100]: str(v)[:1000] for k, v in list(parsed.items())[:100]}

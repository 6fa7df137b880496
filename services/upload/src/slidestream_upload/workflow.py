"""The upload control path's use case: admit, track, verify, publish once, or reject.

1. ``pre-create`` (tusd hook): authenticate the token (401 when unknown, revoked or expired),
   admit the declared size against the limits and the tenant's quota and require a declared
   sha256 (``domain/admission``), check the batch, and name the object
   ``<tenant>/<slide_id>/original``;
2. ``post-create`` / ``post-receive``: record tusd's id and the progress;
3. ``post-finish`` (or the reconciler, :mod:`slidestream_upload.reconciler`, when that hook was
   lost): :meth:`UploadWorkflow.finalize` under a database lease —
4. count the attempt (durably, before it begins: past ``max_verify_attempts`` attempts that
   failed or killed the process, the upload is refused as ``upload-verification-failed``), then
   inspect the complete bytes (:func:`slidestream_upload.quarantine.inspect_upload`: container,
   a zip's end records, sha256, zip policy); a refusal removes the upload and publishes
   ``slides.rejected.v1``;
5. otherwise write the manifest row beside the slide, take the publication mark and record the
   decision, then publish ``slides.uploaded.v1`` and the ``uploaded`` status once and record
   "published".

Every step is idempotent: tusd retries hooks, the reconciler re-runs finalization, and replicas
race for the same upload (the lease decides); a row found publishing is checked against its mark,
so a crash after Kafka's acknowledgement sends nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, timedelta
from uuid import UUID, uuid5

import uuid_utils

from slidestream_contracts.events import (
    ObjectRef,
    SlideFactsV1,
    SlideFormat,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.quarantine import ORIGINAL_ARTEFACT, slide_object_key
from slidestream_contracts.slide_facts import (
    FACT_FIELDS,
    SlideFactsError,
    merge_facts,
    parse_slide_facts,
)
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.tokens import bearer_token, secrets_equal
from slidestream_platform.broker import EventPublisher
from slidestream_platform.decisions import DecisionPublisher
from slidestream_platform.objectstore.port import ObjectStore
from slidestream_platform.publication import PublishMark
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import UploadRow, UploadState, utc_now
from slidestream_upload.adapters.tusd import HookEvent, hook_response, object_key_of
from slidestream_upload.domain.admission import Refusal, UploadRequest, admit
from slidestream_upload.domain.filenames import sanitize_filename
from slidestream_upload.domain.manifest import public_labels
from slidestream_upload.domain.tokens import UNKNOWN_TOKEN
from slidestream_upload.quarantine import (
    Inspection,
    inspect_upload,
    remove_upload,
    write_manifest,
)
from slidestream_upload.settings import UploadSettings

logger = logging.getLogger(__name__)

SLIDE_ID_HEADER = "Slidestream-Slide-Id"
EVENT_ID_NAMESPACE = UUID("6f1d8a52-4c1e-4f59-9a37-6b0f2f1f7a10")
"""Namespace of the deterministic event ids (UUIDv5 of the object key): one upload, one id."""
PROJECT_MAX_CHARS = 100
"""``SlideUploadedV1.project``'s limit; a longer manifest value is cut, not refused."""
VERIFICATION_FAILED = "upload-verification-failed"
"""The reason of an upload refused because its verification kept failing."""


def _metadata(hook: HookEvent) -> dict[str, str]:
    return {k: v for k, v in hook.upload.metadata.items() if isinstance(v, str)}


class UploadWorkflow:
    def __init__(
        self,
        *,
        settings: UploadSettings,
        uploads: UploadRepository,
        store: ObjectStore,
        publisher: EventPublisher,
        decisions: DecisionPublisher,
    ) -> None:
        self._settings = settings
        self._uploads = uploads
        self._store = store
        self._publisher = publisher
        self._decisions = decisions

    # -- tusd hooks --------------------------------------------------------------------------

    def _authenticate(self, hook: HookEvent) -> str | Refusal:
        token = bearer_token(hook.http_request.first("Authorization"))
        return self._uploads.authenticate(token) if token else UNKNOWN_TOKEN

    async def pre_create(self, hook: HookEvent) -> dict[str, object]:
        tenant = await asyncio.to_thread(self._authenticate, hook)
        if isinstance(tenant, Refusal):
            return hook_response(
                reject=True,
                status_code=tenant.status_code,
                body={"reason": tenant.reason, "message": tenant.message},
            )
        metadata = _metadata(hook)
        request = UploadRequest(
            declared_size_bytes=None if hook.upload.size_is_deferred else hook.upload.size,
            declared_sha256=(metadata.get("sha256") or "").lower() or None,
            filename=sanitize_filename(metadata.get("filename", "")),
        )
        batch_id = _uuid_or_none(metadata.get("batch_id"))
        extra = _json_object(metadata.get("meta"))
        refused = await self._refusal(tenant, request, batch_id, extra)
        if refused is not None:
            return refused
        slide_id = UUID(str(uuid_utils.uuid7()))
        object_key = slide_object_key(tenant, slide_id, ORIGINAL_ARTEFACT)
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

    async def _refusal(
        self, tenant: str, request: UploadRequest, batch_id: UUID | None, extra: dict[str, str]
    ) -> dict[str, object] | None:
        """The hook's rejection when the upload may not start: size and quota, the declared
        sha256, a batch of another tenant, a slide fact the platform would not accept."""
        quota_bytes, used_bytes = await asyncio.to_thread(self._uploads.quota, tenant)
        refusal = admit(
            request,
            max_upload_bytes=self._settings.max_upload_bytes,
            quota_bytes=quota_bytes,
            used_bytes=used_bytes,
            sha256_required=self._settings.require_declared_sha256,
        )
        if refusal is not None:
            logger.info("upload refused", extra={"tenant": tenant, "reason": refusal.reason})
            body = {"reason": refusal.reason, "message": refusal.message}
            return hook_response(reject=True, status_code=refusal.status_code, body=body)
        if batch_id is not None:
            batch = await asyncio.to_thread(self._uploads.batch, batch_id)
            if batch is None or batch.tenant != tenant:
                body = {"reason": "unknown-batch", "message": "no such batch for this tenant"}
                return hook_response(reject=True, status_code=404, body=body)
        try:
            parse_slide_facts(extra)
        except SlideFactsError as error:
            body = {"reason": "invalid-slide-facts", "field": error.field, "message": str(error)}
            return hook_response(reject=True, status_code=422, body=body)
        return None

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
        internal = self._settings.tusd_internal_token.get_secret_value()
        if token is not None and secrets_equal(token, internal):
            return hook_response()
        tenant = await asyncio.to_thread(self._authenticate, hook)
        row = await asyncio.to_thread(self._uploads.upload_by_key, object_key_of(hook.upload.id))
        if isinstance(tenant, Refusal) or row is None or row.tenant != tenant:
            return hook_response(
                reject_termination=True,
                status_code=404,
                body={"reason": "not-found", "message": "no such upload for this token"},
            )
        return hook_response()

    async def post_terminate(self, hook: HookEvent) -> None:
        row = await asyncio.to_thread(self._uploads.upload_by_key, object_key_of(hook.upload.id))
        if row is not None:
            await asyncio.to_thread(
                self._uploads.cancel_if_receiving,
                row.slide_id,
                detail="the client cancelled the upload",
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
                if not await self._verify(row, info.size_bytes):
                    return
                row = await asyncio.to_thread(self._uploads.upload, slide_id)
                assert row is not None
            await self._publish_once(row)
        finally:
            heartbeat.cancel()
            await asyncio.to_thread(self._uploads.release, slide_id)

    async def _verify(self, row: UploadRow, size_bytes: int) -> bool:
        """Inspect the complete bytes: reject them, or record the decision to publish (``True``).

        The attempt is counted before it begins, so one that kills the process (a zip that
        exhausts memory) counts too; the reconciler re-drives an unfinished upload every
        ``reconcile_interval_s``, and without the bound it would replay such an upload forever.
        """
        attempts = await asyncio.to_thread(self._uploads.count_verify_attempt, row.slide_id)
        if attempts > self._settings.max_verify_attempts:
            detail = f"verification did not finish in {attempts - 1} attempts"
            await self._reject(row, Inspection(None, None, VERIFICATION_FAILED, detail))
            return False
        inspection = await asyncio.to_thread(
            inspect_upload,
            self._store,
            self._settings.quarantine_bucket,
            row.object_key,
            size_bytes,
            row.declared_sha256,
        )
        if inspection.reason is not None:
            await self._reject(row, inspection)
            return False
        await self._begin_publishing(row, inspection)
        return True

    async def _keep_lease(self, slide_id: UUID, lease: timedelta) -> None:
        """Renew the finalization lease while verification (a multi-GB read) runs."""
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            await asyncio.to_thread(self._uploads.renew, slide_id, lease=lease)

    async def _reject(self, row: UploadRow, inspection: Inspection) -> None:
        reason = inspection.reason or "rejected"
        logger.info(
            "upload rejected",
            extra={"tenant": row.tenant, "slide_id": str(row.slide_id), "reason": reason},
        )
        await asyncio.to_thread(
            self._uploads.end,
            row.slide_id,
            UploadState.REJECTED,
            reason=reason,
            detail=inspection.detail,
            sha256=inspection.sha256,
        )
        # Nothing of a refused upload stays in quarantine.
        await asyncio.to_thread(
            remove_upload, self._store, self._settings.quarantine_bucket, row.object_key
        )
        await self._publisher.publish(
            SlideRejectedV1(
                slide_id=row.slide_id,
                tenant=row.tenant,
                step=Step.UPLOAD,
                reason=reason,
                detail=inspection.detail,
            )
        )
        await self._publisher.publish(
            SlideStatusV1(
                slide_id=row.slide_id,
                tenant=row.tenant,
                state=SlideState.REJECTED,
                step=Step.UPLOAD,
                reason=reason,
                detail=inspection.detail,
            )
        )

    def _manifest_ref(self, row: UploadRow) -> tuple[ObjectRef | None, dict[str, str | None]]:
        """The slide's manifest row, written beside it, and its tissue labels for the event
        (the slide-fact columns among them, as written)."""
        if row.batch_id is None:
            return None, {}
        item = self._uploads.batch_item(row.batch_id, row.filename)
        if item is None:
            return None, {}
        bucket = self._settings.quarantine_bucket
        ref = write_manifest(self._store, bucket, row.tenant, row.slide_id, item)
        extra = json.loads(item.extra_json or "{}")
        extra = extra if isinstance(extra, dict) else {}
        project = extra.get("project")
        facts = {name: str(extra[name]) for name in FACT_FIELDS if extra.get(name)}
        labels = {
            "species": item.species,
            "organ": item.organ,
            "stain": item.stain,
            "project": str(project)[:PROJECT_MAX_CHARS] if project else None,
            **facts,
        }
        return ref, public_labels(labels, (item.case_id, item.specimen_id, item.filename))

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
            project=labels.get("project"),
            declared=_declared_facts(labels, row.metadata_json),
        )

    async def _begin_publishing(self, row: UploadRow, inspection: Inspection) -> None:
        assert inspection.container is not None and inspection.sha256 is not None
        probe = row.model_copy(
            update={
                "verified_sha256": inspection.sha256,
                "container_format": inspection.container.value,
            }
        )
        event = await asyncio.to_thread(self._uploaded_event, probe)
        mark = await self._decisions.mark([event])
        await asyncio.to_thread(
            self._uploads.begin_publishing,
            row.slide_id,
            event_id=uuid5(EVENT_ID_NAMESPACE, row.object_key),
            mark=mark,
            verified_sha256=inspection.sha256,
            container_format=inspection.container.value,
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


def _uuid_or_none(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


def _declared_facts(labels: dict[str, str | None], metadata_json: str) -> SlideFactsV1 | None:
    """The manifest row's facts, completed by ``--meta``'s. Both were checked on the way in (the
    manifest, the pre-create hook); a row older than that check keeps what still reads."""
    try:
        from_manifest = parse_slide_facts(labels)
    except SlideFactsError:
        from_manifest = None
    try:
        from_meta = parse_slide_facts(json.loads(metadata_json or "{}"))
    except (SlideFactsError, json.JSONDecodeError, AttributeError):
        from_meta = None
    return merge_facts(from_manifest, from_meta)


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

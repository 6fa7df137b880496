"""The deid use case: one uploaded slide in, a de-identified slide (or a refusal) out.

Per ``slides.uploaded.v1``:

1. stat the original in ``quarantine`` (its size against the event; its ETag is the version
   this run reads), read the manifest row and the client's file name (both stay in quarantine);
2. pseudonymise the manifest identifiers (keyed HMAC, current key version);
3. de-identify with :mod:`slidestream_wsi` (detection, bounded validation, rewrite, the
   library's own post-conditions). TIFF-based slides are never downloaded: the library reads
   the ranges it needs from the store (:class:`RangedObjectSource`) and returns the output as
   patches of the original. DICOM and zipped series are streamed to scratch (sha256 checked)
   and de-identified into new files;
4. **re-open the output and scan it**: every metadata string for the slide's identifiers,
   associated images left, and every byte for the identifiers and the values removed (the
   library's byte post-condition included). For a patched output, one streamed GET of the
   original checks its sha256 against the event while the output is built chunk by chunk,
   hashed and scanned. Any finding fails closed: ``slides.rejected.v1`` (``phi-residual``),
   nothing written outside quarantine;
5. on success write ``deidentified/<tenant>/<slide_id>/<artefact>``, then take the publication
   mark and record the audit entry, the vault rows, the decision and the retention of the
   original in one transaction, then publish ``slides.deidentified.v1`` and the
   ``deidentified`` status and record "published". A patched output
   is composed inside the object store from the original's unchanged ranges plus the patched
   parts (:meth:`ObjectStore.compose`), only after the gate passed, with the output's digest
   from the streamed pass.

Idempotency (:func:`slidestream_platform.decisions.decide_once`, as convert and qc): the
decision (with the exact events) is stored under (slide id, sha256 of the original) *before*
publishing, and events carry deterministic ids. A redelivery finds the decision without redoing
the work — which also works after the original has left quarantine — and publishes only what
is not out yet (nothing once "published" is recorded). A crash before the decision was stored
redoes the work, which is deterministic (same keys, same bytes).

Slides that can never be processed (not a slide, corrupt, truncated, a bomb, unsupported) raise
:class:`~slidestream_deid.errors.DeidPoisonError`: the delivery middleware dead-letters them and
publishes ``failed:deid``; the partition moves on to the next slide. Every dead-lettered slide
(poison, retries spent, a crash loop) gets the retention of a decided one
(:meth:`DeidWorkflow.on_dead_letter`). A downloaded original is only fetched when scratch holds
it and the output (and, for a zip, its extracted members).

The focused parts: :mod:`~slidestream_deid.original` (step 1: the original's version and bytes,
the identifiers), :mod:`~slidestream_deid.gate` (step 4, whole and streamed) and
:mod:`~slidestream_deid.outcomes` (step 5: events, audit, vault, retention).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from slidestream_contracts.events import (
    DeadLetterRecordV1,
    ObjectRef,
    SlideDeidentifiedV1,
    SlideFixRequestedV1,
    SlideUploadedV1,
)
from slidestream_contracts.quarantine import (
    slide_object_key,
    tus_info_key,
)
from slidestream_contracts.slide_facts import merge_facts
from slidestream_contracts.states import Step
from slidestream_deid.adapters.repository import DeidRecords
from slidestream_deid.adapters.slides import SlideTools
from slidestream_deid.adapters.tables import utc_now
from slidestream_deid.domain.artefacts import artefact_name, content_type
from slidestream_deid.domain.identifiers import (
    SlideIdentifiers,
)
from slidestream_deid.domain.pseudonyms import Pseudonymisation, pseudonymise
from slidestream_deid.domain.verdict import (
    Finding,
    decide,
    is_residual_failure,
)
from slidestream_deid.errors import DeidPoisonError
from slidestream_deid.gate import ResidualPhiGate
from slidestream_deid.original import QuarantineInputs
from slidestream_deid.outcomes import DeidOutcomes
from slidestream_deid.settings import DeidSettings
from slidestream_platform.decisions import (
    Decided,
    DecisionPublisher,
    decide_once,
    events_from_json,
)
from slidestream_platform.errors import RetryableError
from slidestream_platform.objectstore.port import ObjectInfo, ObjectStore
from slidestream_platform.objectstore.ranged import RangedObjectSource
from slidestream_platform.slide_step import require_scratch_space, scratch_directory
from slidestream_wsi.deid import DeidPolicy, DeidResult, PatchedDeidResult
from slidestream_wsi.detect import Container, DetectedFormat
from slidestream_wsi.errors import DeidentificationError, SlideError
from slidestream_wsi.pseudonyms import PseudonymKey

logger = logging.getLogger(__name__)

ORIGINAL_NAME = "original"
"""The original's name in scratch and in artefact naming (never the client's file name)."""
RETENTION_BATCH = 100
EVENT_ID_NAMESPACE = UUID("0b7d4f3e-2a1c-4e8b-9d55-8f3a6c1e2b90")
"""Namespace of deid's deterministic event ids: UUIDv5 of slide id, input sha256 and topic."""


@dataclass(frozen=True, slots=True)
class Timings:
    """Where the time of one de-identification went (for logs and the benchmark)."""

    download_s: float = 0.0
    deidentify_s: float = 0.0
    scan_s: float = 0.0
    upload_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    decided: Decided
    """The events, the decision row's columns and the rows stored with it."""
    timings: Timings
    result: DeidResult | None = None
    ranged_requests: int = 0
    """Ranged GETs of the structure pass (0 when the slide was downloaded instead)."""
    ranged_bytes: int = 0

    @property
    def outcome(self) -> str:
        return str(self.decided.columns["outcome"])


class DeidWorkflow:
    def __init__(
        self,
        *,
        settings: DeidSettings,
        store: ObjectStore,
        records: DeidRecords,
        slides: SlideTools,
        decisions: DecisionPublisher,
        key: PseudonymKey,
    ) -> None:
        self._settings = settings
        self._store = store
        self._records = records
        self._slides = slides
        self._decisions = decisions
        self._key = key
        self._inputs = QuarantineInputs(store)
        self._gate = ResidualPhiGate(slides, store)
        self._outcomes = DeidOutcomes(settings, records, key)

    # -- the consumed event --------------------------------------------------------------------

    async def on_uploaded(self, event: SlideUploadedV1) -> None:
        async def deidentify() -> Decided:
            decision = await asyncio.to_thread(self.decide, event)
            return decision.decided

        announced = await decide_once(
            self._decisions,
            self._records,
            slide_id=event.slide_id,
            tenant=event.tenant,
            input_digest=event.original.sha256,
            decide=deidentify,
        )
        if not announced:
            logger.info(
                "redelivered slide already decided and announced",
                extra={"slide_id": str(event.slide_id), "tenant": event.tenant},
            )
        if event.original.bucket == self._settings.quarantine_bucket:
            # tusd answers HEAD (the client's file name included), GET and PATCH on the upload
            # URL without asking any hook. Decided, nothing needs its .info (the file name was
            # read in step 1): without it tusd answers 404. The original waits for retention.
            info = tus_info_key(event.original.key)
            await asyncio.to_thread(self._store.delete, event.original.bucket, info)

    async def on_fix_requested(self, event: SlideFixRequestedV1) -> None:
        """A partner supplied what conversion lacked (``slidestream slides fix``): announce the
        slide's de-identified event again with ``declared`` completed, under the fix's own
        event id (a redelivery sends the same event; conversion decides once per input).
        Fixes of another step are not deid's to answer."""
        if event.step is not Step.CONVERT:
            return
        row = await asyncio.to_thread(self._records.find, event.slide_id, event.original_sha256)
        stored = events_from_json(row.events_json) if row and row.tenant == event.tenant else []
        announced = next((e for e in stored if isinstance(e, SlideDeidentifiedV1)), None)
        if announced is None:
            raise DeidPoisonError(
                "a fix for a slide deid did not de-identify", reason="fix-without-decision"
            )
        fixed = announced.model_copy(
            update={
                "declared": merge_facts(event.declared, announced.declared),
                "occurred_at": event.occurred_at,
            }
        )
        await self._decisions.publisher.publish(fixed, event_id=event.fix_id)
        logger.info("fix announced", extra={"slide_id": str(event.slide_id), "step": "convert"})

    def decide(self, event: SlideUploadedV1) -> Decision:
        """Do the work and say what to record and announce (blocking; runs in a worker
        thread): :meth:`on_uploaded` stores and publishes it once."""
        self._check_buckets(event)
        with scratch_directory("deid-", self._settings.work_dir) as scratch:
            return self._decide_in(event, scratch)

    async def on_dead_letter(self, record: DeadLetterRecordV1) -> None:
        """Every slide deid dead-letters (poison, retries spent, a crash loop) leaves quarantine
        after the retention, as a decided one does: operators may replay the dead letter until
        then. Runs before the dead letter is published; a failure redelivers the message."""
        retention = self._outcomes.dead_letter_retention(record)
        if retention is None:
            logger.error(
                "dead letter names no slide: nothing of it is scheduled to leave quarantine",
                extra={"offset": record.original_offset, "partition": record.original_partition},
            )
            return
        await asyncio.to_thread(self._records.schedule_retention, retention)

    # -- steps ---------------------------------------------------------------------------------

    def _check_buckets(self, event: SlideUploadedV1) -> None:
        refs = [event.original] + ([event.manifest] if event.manifest is not None else [])
        if any(ref.bucket != self._settings.quarantine_bucket for ref in refs):
            # Only quarantine may hold what deid reads; anything else is a forged or broken event.
            raise DeidPoisonError(
                "the event references objects outside the quarantine bucket",
                reason="unexpected-bucket",
            )

    def _decide_in(self, event: SlideUploadedV1, scratch: Path) -> Decision:
        started = time.perf_counter()
        before = self._inputs.stat_original(event.original)
        identifiers = self._inputs.identifiers(event)
        names = pseudonymise(self._key, event.tenant, event.slide_id, identifiers)
        policy = DeidPolicy(
            tenant=event.tenant,
            key=self._key,
            pseudonym=names.primary,
            associated_images=self._settings.associated_images,
            dicom_dates=self._settings.dicom_dates,
        )
        remote = RangedObjectSource(
            self._store,
            event.original.bucket,
            event.original.key,
            event.original.size_bytes,
            name=ORIGINAL_NAME,
        )
        if self._slides.is_tiff(remote):
            return self._decide_streamed(
                event, remote, before, identifiers, names, policy, scratch, started
            )
        original = scratch / ORIGINAL_NAME
        needed_bytes = self._inputs.scratch_bytes(event, remote)
        require_scratch_space(scratch, needed_bytes, what=f"slide {event.slide_id}")
        self._inputs.download(event.original, original, before)
        downloaded = time.perf_counter()
        try:
            detected = self._slides.detect(original)
            result, series = self._deidentify(original, scratch / "out", policy, detected)
        except DeidentificationError as error:
            if not is_residual_failure(error):
                raise DeidPoisonError(str(error), reason=error.reason) from error
            verdict = decide([Finding("library", "post-condition")])
            timings = Timings(downloaded - started, time.perf_counter() - downloaded)
            return Decision(self._outcomes.rejected(event, verdict), timings)
        except SlideError as error:
            raise DeidPoisonError(str(error), reason=error.reason) from error
        deidentified = time.perf_counter()
        original.unlink()  # free the scratch space before the scan and upload
        verdict = self._gate.check(result, identifiers, series=series)
        scanned = time.perf_counter()
        artefacts = self._upload(event, result, series=series) if verdict.clean else ()
        uploaded = time.perf_counter()
        timings = Timings(
            downloaded - started,
            deidentified - downloaded,
            scanned - deidentified,
            uploaded - scanned,
        )
        if not verdict.clean:
            return Decision(self._outcomes.rejected(event, verdict), timings, result)
        props = self._slides.properties(result.outputs[0])
        decided = self._outcomes.accepted(event, result, names, artefacts, props)
        self._log_accepted(event, result, timings)
        return Decision(decided, timings, result)

    def _decide_streamed(
        self,
        event: SlideUploadedV1,
        remote: RangedObjectSource,
        before: ObjectInfo,
        identifiers: SlideIdentifiers,
        names: Pseudonymisation,
        policy: DeidPolicy,
        scratch: Path,
        started: float,
    ) -> Decision:
        """A TIFF-based slide, de-identified where it lies and read whole exactly once.

        The structure pass reads the ranges the rewrite needs (ranged GETs) and returns the
        output as patches; the gate's metadata checks read the output through them; one
        streamed GET then hashes the input (against the event), builds the output chunk by
        chunk, hashes it and byte-scans it; the object store composes it after the gate.
        """
        try:
            patched = self._slides.deidentify_as_patches(remote, policy)
        except DeidentificationError as error:
            self._raise_if_store_failed(remote, error)
            if not is_residual_failure(error):
                raise DeidPoisonError(str(error), reason=error.reason) from error
            verdict = decide([Finding("library", "post-condition")])
            timings = Timings(deidentify_s=time.perf_counter() - started)
            return Decision(self._outcomes.rejected(event, verdict), timings)
        except SlideError as error:
            self._raise_if_store_failed(remote, error)
            raise DeidPoisonError(str(error), reason=error.reason) from error
        except Exception as error:
            self._raise_if_store_failed(remote, error)
            raise
        deidentified = time.perf_counter()
        verdict, sha256 = self._gate.check_streamed(event.original, patched, identifiers)
        after = self._store.stat(event.original.bucket, event.original.key)
        if after is None or after.etag != before.etag:
            raise RetryableError("the original changed while it was being read")
        scanned = time.perf_counter()
        artefacts = self._compose(event, patched, before, sha256) if verdict.clean else ()
        uploaded = time.perf_counter()
        timings = Timings(0.0, deidentified - started, scanned - deidentified, uploaded - scanned)
        result = patched.result
        if not verdict.clean:
            return Decision(self._outcomes.rejected(event, verdict), timings, result)
        props = self._slides.properties_of_structure(
            patched, remote.fetched_blocks(), scratch / "structure"
        )
        decided = self._outcomes.accepted(event, result, names, artefacts, props)
        self._log_accepted(event, result, timings, remote)
        return Decision(decided, timings, result, remote.requests, remote.bytes_fetched)

    @staticmethod
    def _raise_if_store_failed(remote: RangedObjectSource, error: BaseException) -> None:
        # The parsers report any read error as a broken slide; a failed ranged GET is the
        # store's failure, retried, never a dead letter.
        if remote.failure is not None:
            raise RetryableError("reading the original from the object store failed") from error

    def _log_accepted(
        self,
        event: SlideUploadedV1,
        result: DeidResult,
        timings: Timings,
        remote: RangedObjectSource | None = None,
    ) -> None:
        logger.info(
            "slide deidentified",
            extra={
                "slide_id": str(event.slide_id),
                "tenant": event.tenant,
                "format": result.format.value,
                "bytes_rewritten": result.bytes_rewritten,
                "output_bytes": result.output_bytes,
                "download_s": round(timings.download_s, 3),
                "deidentify_s": round(timings.deidentify_s, 3),
                "scan_s": round(timings.scan_s, 3),
                "upload_s": round(timings.upload_s, 3),
                "ranged_requests": remote.requests if remote else 0,
                "ranged_bytes": remote.bytes_fetched if remote else 0,
            },
        )

    def _deidentify(
        self, original: Path, out_dir: Path, policy: DeidPolicy, detected: DetectedFormat
    ) -> tuple[DeidResult, bool]:
        """The result, and whether it is a series (a zipped DICOM series gives a folder)."""
        series = detected.container is Container.ZIP
        out_dir.mkdir()
        destination = out_dir / ("series" if series else "slide")
        return self._slides.deidentify(original, destination, policy), series

    def _compose(
        self,
        event: SlideUploadedV1,
        patched: PatchedDeidResult,
        source: ObjectInfo,
        sha256: str,
    ) -> tuple[ObjectRef, ...]:
        """Build the output in ``deidentified`` from the original's unchanged ranges."""
        result = patched.result
        artefact = artefact_name(result.format, patched.output.name, series=False)
        written = self._store.compose(
            self._settings.deidentified_bucket,
            slide_object_key(event.tenant, event.slide_id, artefact),
            source,
            patched.patches,
            sha256=sha256,
            content_type=content_type(artefact),
        )
        return (written.to_event_ref(),)

    def _upload(
        self, event: SlideUploadedV1, result: DeidResult, *, series: bool
    ) -> tuple[ObjectRef, ...]:
        refs: list[ObjectRef] = []
        for output in result.outputs:
            artefact = artefact_name(result.format, output.name, series=series)
            written = self._store.put_file(
                self._settings.deidentified_bucket,
                slide_object_key(event.tenant, event.slide_id, artefact),
                output,
                content_type=content_type(artefact),
            )
            refs.append(written.to_event_ref())
        return tuple(refs)

    # -- decisions -----------------------------------------------------------------------------

    # -- retention -----------------------------------------------------------------------------

    async def sweep_retention(self) -> None:
        """Delete quarantine originals whose retention has passed."""
        now = utc_now()
        due = await asyncio.to_thread(self._records.due_for_deletion, now, RETENTION_BATCH)
        for row in due:
            for key in json.loads(row.keys_json):
                await asyncio.to_thread(self._store.delete, row.bucket, key)
            await asyncio.to_thread(self._records.mark_deleted, row.slide_id, now)
            logger.info("quarantine original deleted", extra={"slide_id": str(row.slide_id)})

"""The inference use case: every routed model on every slide QC let through, each decided once.

Per ``slides.qc.v1``:

1. record the QC event with the slide's facts (``inference_slides``); a failed slide stops
   here: it is never analysed;
2. the tenant's routes matching the slide's stain, project and verdict (``min_qc``) name the
   models; a route without a version runs the latest version Triton has ready;
3. per (slide, model, version), with the consumer's partitions paused and polled
   (:mod:`slidestream_platform.membership`, a run may outlast ``max.poll.interval.ms``):
   run before? (slide id + digest of the QC artefacts, model, version and card sha256 in
   ``inference_decisions``) → publish only what is not out yet; else the run
   (:mod:`slidestream_inference.slide_run`), then store the decision, publish
   ``slides.inferred.v1`` and the ``inferred`` status, record "published".

Per ``slides.uploaded.v1``: record the stain; when the QC event came first (the topics are
consumed independently), the routes are matched again now that the stain is known.

Per ``inference.requests.v1`` (backfill): step 3 for the named model version on a slide whose
QC event is recorded (a failed slide is skipped); the request's backfill counts it done, or
failed when it is dead-lettered.

Triton unreachable, a model not ready or unloaded mid-slide → retried (nothing is
acknowledged); a model the models API loaded that Triton no longer serves (a restart) is loaded
again, with its canary, before the run; a model whose answers contradict its card → dead letter
``model-output-shape``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from uuid import UUID

from slidestream_contracts.events import (
    InferenceRequestedV1,
    QcVerdict,
    SlideQcV1,
    SlideUploadedV1,
)
from slidestream_inference.adapters.model_cards import ModelCards, StoredCard
from slidestream_inference.adapters.route_source import RouteSource
from slidestream_inference.adapters.slide_records import SlideFacts, SlideRecords
from slidestream_inference.adapters.tables import InferenceDecisionRow
from slidestream_inference.adapters.triton import ModelNotReadyError, TritonModels
from slidestream_inference.settings import InferenceSettings
from slidestream_inference.slide_run import InferencePoisonError, SlideRun
from slidestream_platform.decisions import (
    Decided,
    DecisionPublisher,
    SqlDecisionRecords,
    decide_once,
    input_digest,
)
from slidestream_platform.errors import PoisonError
from slidestream_platform.membership import PausableConsumer, keep_group_membership

logger = logging.getLogger(__name__)


class ModelCardMissingError(ModelNotReadyError):
    """A version Triton serves or a route names has no card (yet): retried."""

    reason = "model-card-missing"


def run_digest(qc: SlideQcV1, stored: StoredCard) -> str:
    """Digest of everything a run depends on: the QC artefacts it may read (levels, tissue
    mask), the model name and version and the card's own bytes."""
    artefacts = [
        *qc.dicom,
        *((qc.tiff,) if qc.tiff else ()),
        *((qc.tissue_mask,) if qc.tissue_mask else ()),
    ]
    return input_digest(
        [
            *(ref.sha256 for ref in artefacts),
            f"model:{stored.card.name}",
            f"version:{stored.card.version}",
            f"card:{stored.sha256}",
        ]
    )


class BackfillProgress(Protocol):
    def record_backfill_result(self, backfill_id: UUID, ok: bool) -> None: ...


class ModelRestorer(Protocol):
    async def restore(self, name: str) -> bool:
        """Load ``name`` again if it should be loaded; whether a load was attempted."""
        ...


class InferenceWorkflow:
    def __init__(
        self,
        *,
        settings: InferenceSettings,
        slides: SlideRecords,
        routes: RouteSource,
        cards: ModelCards,
        triton: TritonModels,
        run: SlideRun,
        records: SqlDecisionRecords[InferenceDecisionRow],
        decisions: DecisionPublisher,
        backfills: BackfillProgress,
        models: ModelRestorer,
    ) -> None:
        self._settings = settings
        self._slides = slides
        self._routes = routes
        self._cards = cards
        self._triton = triton
        self._run = run
        self._records = records
        self._decisions = decisions
        self._backfills = backfills
        self._models = models

    # -- the consumed events -------------------------------------------------------------------

    async def on_qc(self, event: SlideQcV1, consumer: PausableConsumer | None = None) -> None:
        facts = await asyncio.to_thread(self._slides.record_qc, event)
        await self._run_routes(facts, consumer)

    async def on_uploaded(
        self, event: SlideUploadedV1, consumer: PausableConsumer | None = None
    ) -> None:
        facts = await asyncio.to_thread(self._slides.record_upload, event)
        if facts.qc is not None:
            await self._run_routes(facts, consumer)

    async def on_requested(
        self, event: InferenceRequestedV1, consumer: PausableConsumer | None = None
    ) -> None:
        facts = await asyncio.to_thread(self._slides.get, event.slide_id)
        if facts is None or facts.qc is None or facts.tenant != event.tenant:
            raise InferencePoisonError(
                f"no QC event of slide {event.slide_id} in tenant {event.tenant}",
                reason="slide-not-qc-checked",
            )
        if facts.qc.verdict is QcVerdict.FAIL:
            logger.info(
                "requested run on a QC-failed slide skipped", extra=_log(facts, event.model_name)
            )
            await self._count(event, ok=True)
            return
        try:
            announced = await self._run_model(
                facts.qc, event.model_name, event.model_version, consumer
            )
        except PoisonError:
            await self._count(event, ok=False)  # dead-lettered: this request has ended
            raise
        if announced:  # a redelivery of a request already decided was counted then
            await self._count(event, ok=True)

    async def _count(self, event: InferenceRequestedV1, *, ok: bool) -> None:
        if event.backfill_id is not None:
            await asyncio.to_thread(self._backfills.record_backfill_result, event.backfill_id, ok)

    # -- routing and the decision ------------------------------------------------------------

    async def _run_routes(self, facts: SlideFacts, consumer: PausableConsumer | None) -> None:
        qc = facts.qc
        assert qc is not None
        if qc.verdict is QcVerdict.FAIL:
            logger.info("QC-failed slide not analysed", extra=_log(facts, None))
            return
        matches = await asyncio.to_thread(
            self._routes.routes_for, facts.tenant, facts.stain, facts.project, qc.verdict.value
        )
        if not matches:
            logger.info("no model routed to the slide", extra=_log(facts, None))
        for match in matches:
            version = match.version or await self._latest_ready(match.model_name)
            await self._run_model(qc, match.model_name, version, consumer)

    async def _latest_ready(self, name: str) -> str:
        ready = await self._ready_versions(name, wanted=None)
        if not ready:
            raise ModelNotReadyError(f"{name}: routed, but no version is loaded and ready")
        return ready[-1]

    async def _ready_versions(self, name: str, wanted: str | None) -> list[str]:
        """The versions Triton serves; a model the models API loaded but Triton lost (it
        restarted: explicit model control forgets everything) is loaded again first."""
        ready = list(await self._triton.ready_versions(name))
        if (ready and wanted is None) or wanted in ready:
            return ready
        if await self._models.restore(name):
            ready = list(await self._triton.ready_versions(name))
        return ready

    async def _run_model(
        self, qc: SlideQcV1, name: str, version: str, consumer: PausableConsumer | None
    ) -> bool:
        """Run ``name`` ``version`` on the slide once; whether this call announced it."""
        stored = await asyncio.to_thread(self._cards.card, name, version)
        if stored is None:
            raise ModelCardMissingError(f"{name} version {version}: no card in the registry")
        if version not in await self._ready_versions(name, wanted=version):
            raise ModelNotReadyError(f"{name} version {version} is not loaded and ready")

        async def run() -> Decided:
            async with keep_group_membership(
                consumer, poll_every_s=self._settings.membership_poll_s
            ):
                outcome = await self._run.run(qc, stored)
            columns = {
                "model_name": name,
                "model_version": version,
                "tile_count": outcome.tile_count,
                "seconds": outcome.seconds,
            }
            return Decided(outcome.events, columns)

        announced = await decide_once(
            self._decisions,
            self._records,
            slide_id=qc.slide_id,
            tenant=qc.tenant,
            input_digest=run_digest(qc, stored),
            decide=run,
        )
        if not announced:
            logger.info(
                "redelivered run already announced",
                extra={"slide_id": str(qc.slide_id), "model": name, "model_version": version},
            )
        return announced


def _log(facts: SlideFacts, model: str | None) -> dict[str, str]:
    extra = {"slide_id": str(facts.slide_id), "tenant": facts.tenant}
    if model is not None:
        extra["model"] = model
    return extra

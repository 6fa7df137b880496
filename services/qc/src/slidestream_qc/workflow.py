"""The qc use case: one converted slide in, a verdict with its report and pictures out.

Per ``slides.converted.v1``:

1. judged before? (slide id + digest of the converted artefacts in ``qc_decisions``) → publish
   only what is not out yet, done;
2. choose the levels QC needs from the event's level list alone, download only their DICOM
   instances (the pyramidal TIFF when the tenant has no DICOM output), run the measures with
   the tenant's thresholds;
3. write ``derived/<tenant>/<slide_id>/qc/{report.json, *.png, report.html}`` (fixed names);
4. store the decision, publish ``slides.qc.v1`` (with the usable-tissue mask and the converted
   refs and levels it judged, which inference reads) and the status ``qc_passed``/``qc_warned``/
   ``qc_failed`` (with the reasons), record "published". Failing slides stop here: inference
   consumes only passed and warned ones.

Slides that can never be judged raise :class:`QcPoisonError` (dead letter, ``failed:qc``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

from slidestream_contracts.events import (
    ObjectRef,
    QcMeasure,
    QcVerdict,
    SlideConvertedV1,
    SlideEvent,
    SlideQcV1,
    SlideStatusV1,
)
from slidestream_contracts.states import Step
from slidestream_platform.decisions import (
    Decided,
    DecisionPublisher,
    SqlDecisionRecords,
    decide_once,
    input_digest,
)
from slidestream_platform.errors import PoisonError
from slidestream_platform.objectstore.downloads import download_verified
from slidestream_platform.objectstore.port import ObjectStore
from slidestream_platform.slide_step import (
    poison_on,
    require_scratch_space,
    scratch_directory,
)
from slidestream_qc.adapters.runner import QcOutcome, QcRunner, with_measure
from slidestream_qc.adapters.tables import QcDecisionRow
from slidestream_qc.domain.artefacts import (
    REPORT_NAME,
    SUMMARY_NAME,
    content_type,
    derived_key,
    refs_for_levels,
)
from slidestream_qc.domain.declared import declared_spacing_check
from slidestream_qc.domain.outcome import state_for, status_detail
from slidestream_qc.settings import QcSettings
from slidestream_wsi.errors import SlideError
from slidestream_wsi.pyramid import described_geometry
from slidestream_wsi.qc import TISSUE_MASK_PNG

logger = logging.getLogger(__name__)


class QcPoisonError(PoisonError):
    """This slide can never be judged (the reason says why)."""

    reason = "invalid-slide"


@dataclass(frozen=True, slots=True)
class QcMetrics:
    seconds: Histogram
    verdicts: Counter
    fraction_read: Histogram

    @classmethod
    def register(cls, registry: CollectorRegistry) -> QcMetrics:
        return cls(
            seconds=Histogram(
                "slidestream_qc_seconds",
                "Wall time of one QC run (download of the needed levels, measures, uploads).",
                buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
                registry=registry,
            ),
            verdicts=Counter(
                "slidestream_qc_verdicts", "QC verdicts.", ["verdict"], registry=registry
            ),
            fraction_read=Histogram(
                "slidestream_qc_fraction_read",
                "Bytes QC read / bytes of the converted slide.",
                buckets=(0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class Judged:
    events: tuple[SlideEvent, ...]
    verdict: str
    fraction_read: float
    seconds: float


def converted_digest(event: SlideConvertedV1) -> str:
    """Digest of everything QC may read: the converted artefacts' own digests."""
    refs = [*event.dicom, *((event.tiff,) if event.tiff else ())]
    return input_digest([ref.sha256 for ref in refs])


class QcWorkflow:
    def __init__(
        self,
        *,
        settings: QcSettings,
        store: ObjectStore,
        records: SqlDecisionRecords[QcDecisionRow],
        runner: QcRunner,
        decisions: DecisionPublisher,
        metrics: QcMetrics,
    ) -> None:
        self._settings = settings
        self._store = store
        self._records = records
        self._runner = runner
        self._decisions = decisions
        self._metrics = metrics

    async def on_converted(self, event: SlideConvertedV1) -> None:
        async def judge() -> Decided:
            judged = await asyncio.to_thread(self.judge, event)
            columns = {
                "verdict": judged.verdict,
                "fraction_read": judged.fraction_read,
                "seconds": judged.seconds,
            }
            return Decided(judged.events, columns)

        announced = await decide_once(
            self._decisions,
            self._records,
            slide_id=event.slide_id,
            tenant=event.tenant,
            input_digest=converted_digest(event),
            decide=judge,
        )
        if not announced:
            logger.info("redelivered slide already judged", extra=_log(event))

    # -- the work (in a worker thread) ---------------------------------------------------------

    def judge(self, event: SlideConvertedV1) -> Judged:
        started = time.perf_counter()
        with scratch_directory(f"qc-{event.slide_id}-", self._settings.work_dir) as scratch:
            outcome = self._measure(event, scratch)
        checked = declared_spacing_check(event)
        if checked is not None:
            outcome = with_measure(outcome, *checked)
        report_ref, pictures = self._upload(event, outcome)
        tissue_mask = next((ref for ref in pictures if ref.key.endswith(TISSUE_MASK_PNG)), None)
        report = outcome.report
        elapsed = time.perf_counter() - started
        self._metrics.seconds.observe(elapsed)
        self._metrics.verdicts.labels(verdict=report.verdict).inc()
        self._metrics.fraction_read.observe(report.read_fraction)
        qc_event = SlideQcV1(
            slide_id=event.slide_id,
            tenant=event.tenant,
            verdict=QcVerdict(report.verdict),
            measures=tuple(
                QcMeasure(
                    name=m.name,
                    value=m.value,
                    unit=m.unit,
                    threshold=m.threshold,
                    verdict=QcVerdict(m.verdict),
                )
                for m in report.measures
            ),
            reasons=report.reasons,
            report=report_ref,
            overlays=tuple(ref for ref in pictures if ref is not tissue_mask),
            tissue_mask=tissue_mask,
            dicom=event.dicom,
            tiff=event.tiff,
            levels=event.levels,
        )
        status = SlideStatusV1(
            slide_id=event.slide_id,
            tenant=event.tenant,
            state=state_for(report.verdict),
            step=Step.QC,
            reason=None if report.verdict == "pass" else f"qc-{report.verdict}",
            detail=status_detail(report.reasons),
        )
        logger.info(
            "slide judged",
            extra={
                **_log(event),
                "verdict": report.verdict,
                "fraction_read": round(report.read_fraction, 5),
                "seconds": round(elapsed, 3),
            },
        )
        return Judged((qc_event, status), report.verdict, report.read_fraction, elapsed)

    def _measure(self, event: SlideConvertedV1, scratch: Path) -> QcOutcome:
        thresholds = self._settings.thresholds_for(event.tenant)
        label = f"{event.tenant}/{event.slide_id}"
        levels = described_geometry(event.levels)
        with poison_on(SlideError, QcPoisonError):
            needed = self._runner.levels_needed(levels)
            chosen = refs_for_levels(event.dicom, needed) if event.dicom else None
            if chosen is not None:
                self._require_space(event, chosen, scratch)
                files = [self._download(ref, scratch) for ref in chosen]
                total = sum(ref.size_bytes for ref in event.dicom)
                return self._runner.run_dicom(files, levels, total, thresholds, label)
            if event.tiff is not None:
                self._require_space(event, [event.tiff], scratch)
                return self._runner.run_tiff(self._download(event.tiff, scratch), thresholds, label)
        raise QcPoisonError(
            "the converted event names neither the needed DICOM levels nor a TIFF",
            reason="nothing-to-read",
        )

    @staticmethod
    def _require_space(event: SlideConvertedV1, refs: Sequence[ObjectRef], scratch: Path) -> None:
        """QC reads what it downloads and writes nothing large: the files themselves."""
        needed_bytes = sum(ref.size_bytes for ref in refs)
        require_scratch_space(scratch, needed_bytes, what=f"slide {event.slide_id}")

    def _download(self, ref: ObjectRef, scratch: Path) -> Path:
        target = scratch / ref.key.rsplit("/", 1)[-1]
        return download_verified(
            self._store, ref, target, expected_bucket=self._settings.converted_bucket
        )

    def _put(self, event: SlideConvertedV1, name: str, data: bytes) -> ObjectRef:
        written = self._store.put_stream(
            self._settings.derived_bucket,
            derived_key(event.tenant, event.slide_id, name),
            io.BytesIO(data),
            len(data),
            content_type=content_type(name),
        )
        return written.to_event_ref()

    def _upload(
        self, event: SlideConvertedV1, outcome: QcOutcome
    ) -> tuple[ObjectRef, tuple[ObjectRef, ...]]:
        pictures = tuple(
            self._put(event, name, data)
            for name, data in sorted(outcome.pictures.items())
            if name != SUMMARY_NAME
        )
        if SUMMARY_NAME in outcome.pictures:
            pictures = (*pictures, self._put(event, SUMMARY_NAME, outcome.pictures[SUMMARY_NAME]))
        report = self._put(event, REPORT_NAME, outcome.report.to_json().encode())
        return report, pictures


def _log(event: SlideConvertedV1) -> dict[str, str]:
    return {"slide_id": str(event.slide_id), "tenant": event.tenant}

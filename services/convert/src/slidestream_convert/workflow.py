"""The convert use case: one de-identified slide in, DICOM WSI and/or pyramidal TIFF out.

Per ``slides.deidentified.v1``:

1. converted before? (slide id + digest of the de-identified artefacts in
   ``convert_conversions``) → publish only what is not out yet, done;
2. with the consumer's partitions paused and polled (:mod:`slidestream_platform.membership`, so
   a conversion longer than ``max.poll.interval.ms`` keeps the group stable): check scratch
   holds :data:`SCRATCH_EXPANSION` times the input, stream the artefacts from
   ``deidentified`` to scratch (sha256 and size checked), convert with
   :mod:`slidestream_wsi.convert` (lossless copy where possible, pixel proof, conformance gate),
   upload the outputs and the provenance record to ``converted/<tenant>/<slide_id>/…``
   (deterministic keys: a redo overwrites);
3. take the publication mark of ``slides.converted.v1``'s partition, store the row with the
   events, publish ``slides.converted.v1`` and the ``converted`` status, record "published".

The offset is committed after the handler returns (``NACK_ON_ERROR``), i.e. after step 3.
Slides that can never be converted raise :class:`ConvertPoisonError` (dead letter,
``failed:convert``); storage faults and a missing conformance tool are retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

from slidestream_contracts.events import (
    Compression,
    ConvertedLevel,
    ObjectRef,
    SlideConvertedV1,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideStatusV1,
)
from slidestream_contracts.quarantine import slide_object_key
from slidestream_contracts.states import SlideState, Step
from slidestream_convert.adapters.converter import SlideConverter
from slidestream_convert.adapters.tables import ConversionRow
from slidestream_convert.domain.artefacts import (
    PROVENANCE_ARTEFACT,
    content_type,
    dicom_artefact,
    source_file_name,
    tiff_artefact,
)
from slidestream_convert.domain.outputs import outputs_for
from slidestream_convert.settings import ConvertSettings
from slidestream_platform.decisions import (
    Decided,
    DecisionPublisher,
    SqlDecisionRecords,
    decide_once,
    input_digest,
)
from slidestream_platform.errors import PoisonError
from slidestream_platform.membership import PausableConsumer, keep_group_membership
from slidestream_platform.objectstore.downloads import download_verified
from slidestream_platform.objectstore.port import ObjectStore
from slidestream_platform.slide_step import (
    poison_on,
    require_scratch_space,
    scratch_directory,
)
from slidestream_wsi.convert import ConversionOptions, ConversionResult, DicomIdentity
from slidestream_wsi.errors import SlideError

logger = logging.getLogger(__name__)

PROGRESS_LOG_EVERY_S = 10.0
"""A long conversion logs its progress this often (tiles done / total)."""
SCRATCH_EXPANSION = 3.0
"""Scratch a conversion takes per byte of input: the input, then up to two outputs (DICOM WSI
and pyramidal TIFF) of about its size each (the chart sizes the volume for three slides)."""


class ConvertPoisonError(PoisonError):
    """This slide can never be converted (the reason says why)."""

    reason = "invalid-slide"


@dataclass(frozen=True, slots=True)
class ConvertMetrics:
    seconds: Histogram
    output_bytes: Counter
    levels: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> ConvertMetrics:
        return cls(
            seconds=Histogram(
                "slidestream_convert_seconds",
                "Wall time of one conversion (download, convert, verify, upload).",
                buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
                registry=registry,
            ),
            output_bytes=Counter(
                "slidestream_convert_output_bytes",
                "Bytes written to the converted bucket.",
                ["output"],
                registry=registry,
            ),
            levels=Counter(
                "slidestream_convert_levels",
                "Pyramid levels written, by how they were produced.",
                ["how"],
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class Converted:
    events: tuple[SlideEvent, ...]
    conversion_s: float
    output_bytes: int


class ConvertWorkflow:
    def __init__(
        self,
        *,
        settings: ConvertSettings,
        store: ObjectStore,
        records: SqlDecisionRecords[ConversionRow],
        converter: SlideConverter,
        decisions: DecisionPublisher,
        metrics: ConvertMetrics,
    ) -> None:
        self._settings = settings
        self._store = store
        self._records = records
        self._converter = converter
        self._decisions = decisions
        self._metrics = metrics

    # -- the consumed event --------------------------------------------------------------------

    async def on_deidentified(
        self, event: SlideDeidentifiedV1, consumer: PausableConsumer | None = None
    ) -> None:
        digest = input_digest([a.sha256 for a in event.artefacts])

        async def convert() -> Decided:
            async with keep_group_membership(
                consumer, poll_every_s=self._settings.membership_poll_s
            ):
                converted = await asyncio.to_thread(self.convert, event, digest)
            return Decided(
                converted.events,
                {"conversion_s": converted.conversion_s, "output_bytes": converted.output_bytes},
            )

        announced = await decide_once(
            self._decisions,
            self._records,
            slide_id=event.slide_id,
            tenant=event.tenant,
            input_digest=digest,
            decide=convert,
        )
        if not announced:
            logger.info("redelivered slide already converted and announced", extra=_log(event))

    # -- the work (in a worker thread) ---------------------------------------------------------

    def convert(self, event: SlideDeidentifiedV1, digest: str) -> Converted:
        started = time.perf_counter()
        with scratch_directory(f"convert-{event.slide_id}-", self._settings.work_dir) as scratch:
            input_bytes = sum(ref.size_bytes for ref in event.artefacts)
            needed_bytes = int(SCRATCH_EXPANSION * input_bytes)
            require_scratch_space(scratch, needed_bytes, what=f"slide {event.slide_id}")
            sources = [
                self._download(ref, scratch / "in" / source_file_name(ref.key, index))
                for index, ref in enumerate(event.artefacts)
            ]
            out_dir = scratch / "out"
            out_dir.mkdir()
            result = self._convert(event, sources, out_dir)
            converted_event, output_bytes = self._upload(event, result, digest, out_dir)
        elapsed = time.perf_counter() - started
        self._metrics.seconds.observe(elapsed)
        for level in result.levels:
            how = "generated" if level.generated else "copied" if level.lossless_copy else "encoded"
            self._metrics.levels.labels(how=how).inc()
        status = SlideStatusV1(
            slide_id=event.slide_id,
            tenant=event.tenant,
            state=SlideState.CONVERTED,
            step=Step.CONVERT,
        )
        logger.info(
            "slide converted",
            extra={
                **_log(event),
                "levels": len(result.levels),
                "lossless_levels": sum(1 for lv in result.levels if lv.lossless_copy),
                "output_bytes": output_bytes,
                "seconds": round(elapsed, 3),
                # Not in provenance.json: a redo must write that object's very bytes again.
                "timings_s": result.timings,
            },
        )
        return Converted((converted_event, status), elapsed, output_bytes)

    def _download(self, ref: ObjectRef, target: Path) -> Path:
        return download_verified(
            self._store, ref, target, expected_bucket=self._settings.deidentified_bucket
        )

    def _convert(
        self, event: SlideDeidentifiedV1, sources: Sequence[Path], out_dir: Path
    ) -> ConversionResult:
        settings = self._settings
        options = ConversionOptions(
            outputs=outputs_for(event.tenant, settings.default_outputs, settings.tenant_outputs),
            tile_size_px=settings.tile_size_px,
            jpeg_quality=settings.jpeg_quality,
            verify=settings.verify,
            sample_tiles_per_level=settings.sample_tiles_per_level,
            run_dciodvfy=settings.run_dciodvfy,
            assumed_mpp_um=_spacing_fallback(event, settings.assumed_mpp_um),
            fill_pyramid_gaps=settings.fill_pyramid_gaps,
            extend_pyramid=settings.extend_pyramid,
        )
        identity = DicomIdentity(
            slide_id=str(event.slide_id),
            patient_pseudonym=event.pseudonyms.get("patient"),
            case_pseudonym=event.pseudonyms.get("case"),
            specimen_pseudonym=event.pseudonyms.get("specimen"),
        )
        last_log = time.monotonic()

        def progress(done: int, total: int) -> None:
            nonlocal last_log
            now = time.monotonic()
            if now - last_log >= PROGRESS_LOG_EVERY_S:
                last_log = now
                logger.info(
                    "converting", extra={**_log(event), "tiles_done": done, "tiles_total": total}
                )

        with poison_on(SlideError, ConvertPoisonError):
            return self._converter.convert(sources, out_dir, identity, options, progress)

    def _put(self, event: SlideDeidentifiedV1, artefact: str, path: Path) -> ObjectRef:
        written = self._store.put_file(
            self._settings.converted_bucket,
            slide_object_key(event.tenant, event.slide_id, artefact),
            path,
            content_type=content_type(artefact),
        )
        output = artefact.split("/", 1)[0] if "/" in artefact else "provenance"
        self._metrics.output_bytes.labels(output=output).inc(written.size_bytes)
        return written.to_event_ref()

    def _upload(
        self, event: SlideDeidentifiedV1, result: ConversionResult, digest: str, out_dir: Path
    ) -> tuple[SlideConvertedV1, int]:
        dicom = tuple(self._put(event, dicom_artefact(p.name), p) for p in result.dicom_files)
        tiff = (
            self._put(event, tiff_artefact(result.tiff_file.name), result.tiff_file)
            if result.tiff_file is not None
            else None
        )
        provenance_file = out_dir / PROVENANCE_ARTEFACT
        provenance_file.write_text(
            json.dumps(
                {
                    "slide_id": str(event.slide_id),
                    "input_sha256": digest,
                    "inputs": [a.model_dump(mode="json") for a in event.artefacts],
                    **result.provenance,
                },
                indent=2,
                sort_keys=True,
                default=str,
            )
        )
        provenance = self._put(event, PROVENANCE_ARTEFACT, provenance_file)
        levels = tuple(
            ConvertedLevel(
                index=level.index,
                width_px=level.width_px,
                height_px=level.height_px,
                tile_size_px=level.tile_size_px,
                mpp_x=level.mpp_x,
                mpp_y=level.mpp_y,
                compression=Compression(level.compression),
                lossless_copy=level.lossless_copy,
                pixel_proof_sha256=level.pixel_proof_sha256,
            )
            for level in result.levels
        )
        written = sum(ref.size_bytes for ref in (*dicom, *((tiff,) if tiff else ()), provenance))
        converted = SlideConvertedV1(
            slide_id=event.slide_id,
            tenant=event.tenant,
            dicom=dicom,
            tiff=tiff,
            levels=levels,
            provenance=provenance,
            declared=event.declared,
            spacing_declared=_spacing_declared(event),
        )
        return converted, written


def _spacing_declared(event: SlideDeidentifiedV1) -> bool:
    """The file states no spacing (deid read it with the one reader) and the partner gave one."""
    stated = event.mpp_x is not None or event.mpp_y is not None
    return not stated and event.declared is not None and event.declared.mpp_um is not None


def _spacing_fallback(event: SlideDeidentifiedV1, operators_mpp_um: float | None) -> float | None:
    """The spacing written when the file states none: the partner's declared one (issue 18),
    else the operators' ``ASSUMED_MPP_UM``. The file's own always wins."""
    if event.declared is not None and event.declared.mpp_um is not None:
        return event.declared.mpp_um
    return operators_mpp_um


def _log(event: SlideDeidentifiedV1) -> dict[str, str]:
    return {"slide_id": str(event.slide_id), "tenant": event.tenant}

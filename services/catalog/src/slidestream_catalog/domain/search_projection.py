"""The search projection: what each slide event sets on the slide's searchable record.

Rules (issue 15; the table layout is ``adapters/search_tables.py``):

* **idempotent**: applying an event twice gives the same record (the second time returns the
  record itself, so the store writes nothing);
* **monotonic per stage**: each stage's fields are written together with that stage's event time
  (``uploaded_at`` ... ``qc_at``, ``inferred_at`` per model); an event older than the stored time
  of its stage never overwrites it, whatever arrived in between;
* **out-of-order stages**: a stage's event fills its fields whichever stage came first; the first
  event of a slide creates the record with the event's tenant;
* **one tenant per slide**: an event naming another tenant than the record's raises
  :class:`~slidestream_contracts.lifecycle.TenantMismatchError` (the consumer dead-letters it);
* **state** (``slides.status.v1`` and ``slides.rejected.v1``) follows
  :func:`slidestream_contracts.lifecycle.apply`, the rules every projection of slide state shares;
* ``updated_at`` is the latest event time seen; ``text`` is :func:`search_text` of the result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from slidestream_contracts.events import (
    ObjectRef,
    SlideConvertedV1,
    SlideDeidentifiedV1,
    SlideEvent,
    SlideFactsV1,
    SlideInferredV1,
    SlideQcV1,
    SlideRejectedV1,
    SlideStatusV1,
    SlideUploadedV1,
)
from slidestream_contracts.lifecycle import SlideRecord, StatusChange, TenantMismatchError, apply
from slidestream_contracts.states import SlideState, Step

MAX_TEXT_CHARS = 4000
"""The ``text`` column's length (``search_slide.text``)."""


@dataclass(frozen=True, slots=True)
class SlideFields:
    """The ``search_slide`` columns of one slide (all but ``generation``), stage by stage."""

    slide_id: UUID
    tenant: str
    # slides.uploaded.v1
    project: str | None = None
    species: str | None = None
    organ: str | None = None
    stain: str | None = None
    container_format: str | None = None
    original_bytes: int | None = None
    uploaded_at: datetime | None = None
    # slides.deidentified.v1
    case_id: str | None = None
    specimen_id: str | None = None
    patient_id: str | None = None
    scanner_vendor: str | None = None
    scanner_model: str | None = None
    format: str | None = None
    width_px: int | None = None
    height_px: int | None = None
    mpp_um: float | None = None
    objective_power: float | None = None
    deidentified_bytes: int | None = None
    deidentified_at: datetime | None = None
    # slides.converted.v1
    level_count: int | None = None
    converted_bytes: int | None = None
    levels_json: str = "[]"
    images_json: str = "{}"
    converted_at: datetime | None = None
    # slides.qc.v1
    qc_verdict: str | None = None
    qc_reasons_json: str = "[]"
    qc_at: datetime | None = None
    # slides.inferred.v1: the latest run of any model
    tile_count: int | None = None
    inferred_at: datetime | None = None
    # slides.status.v1 and slides.rejected.v1
    state: str | None = None
    step: str | None = None
    reason: str | None = None
    detail: str = ""
    status_at: datetime | None = None
    updated_at: datetime | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Measure:
    """One QC measure (``search_measure``)."""

    name: str
    value: float
    unit: str
    verdict: str


@dataclass(frozen=True, slots=True)
class ModelRun:
    """A model's latest run on the slide (``search_model_run``) and its slide-level outputs
    (``search_score``, sorted by output name)."""

    model: str
    model_version: str
    tenant: str
    tile_count: int
    tile_mpp_um: float | None
    embeddings_json: str | None
    slide_embedding_json: str | None
    inferred_at: datetime
    scores: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class SlideSearchRecord:
    """Everything the search projection knows about one slide; runs are sorted by model."""

    slide: SlideFields
    measures: tuple[Measure, ...] = ()
    runs: tuple[ModelRun, ...] = field(default_factory=tuple)

    def run(self, model: str) -> ModelRun | None:
        return next((run for run in self.runs if run.model == model), None)


def project(record: SlideSearchRecord | None, event: SlideEvent) -> SlideSearchRecord:
    """The record after ``event``; returns ``record`` itself when the event changes nothing."""
    if record is not None and record.slide.tenant != event.tenant:
        raise TenantMismatchError(
            f"slide {event.slide_id} belongs to another tenant than the {event.TOPIC} event names"
        )
    current = record or SlideSearchRecord(SlideFields(event.slide_id, event.tenant))
    updated = _apply_stage(current, event)
    latest = _later(updated.slide.updated_at, event.occurred_at)
    slide = replace(updated.slide, updated_at=latest)
    slide = replace(slide, text=search_text(replace(updated, slide=slide)))
    result = replace(updated, slide=slide)
    return record if record is not None and result == record else result


def _apply_stage(record: SlideSearchRecord, event: SlideEvent) -> SlideSearchRecord:
    if isinstance(event, SlideStatusV1):
        return _with_status(record, event.state, event.step, event.reason, event.detail, event)
    if isinstance(event, SlideRejectedV1):
        return _with_status(
            record, SlideState.REJECTED, event.step, event.reason, event.detail, event
        )
    if isinstance(event, SlideInferredV1):
        return _with_run(record, event)
    stage = _stage_fields(record.slide, event)
    return record if stage is None else replace(record, slide=stage[0], **stage[1])


def _stage_fields(
    slide: SlideFields, event: SlideEvent
) -> tuple[SlideFields, dict[str, Any]] | None:
    """The slide's fields after a one-stage event, and other parts of the record it replaces;
    ``None`` when the event is older than its stage's stored time."""
    if isinstance(event, SlideUploadedV1):
        return _newer(slide.uploaded_at, event, lambda: (_uploaded(slide, event), {}))
    if isinstance(event, SlideDeidentifiedV1):
        return _newer(slide.deidentified_at, event, lambda: (_deidentified(slide, event), {}))
    if isinstance(event, SlideConvertedV1):
        return _newer(slide.converted_at, event, lambda: (_converted(slide, event), {}))
    if isinstance(event, SlideQcV1):
        # One measure per name (the last one given), as the table keys them.
        named = {m.name: Measure(m.name, m.value, m.unit, m.verdict.value) for m in event.measures}
        measures = tuple(named[name] for name in sorted(named))
        return _newer(slide.qc_at, event, lambda: (_qc(slide, event), {"measures": measures}))
    return None  # an event of no stage of ours (inference requests) changes nothing


def _newer(
    stored: datetime | None,
    event: SlideEvent,
    build: Callable[[], tuple[SlideFields, dict[str, Any]]],
) -> tuple[SlideFields, dict[str, Any]] | None:
    # Equal times apply: the same event again writes the same values (idempotent).
    if stored is not None and event.occurred_at < stored:
        return None
    return build()


def _uploaded(slide: SlideFields, event: SlideUploadedV1) -> SlideFields:
    return replace(
        slide,
        project=event.project,
        species=event.species,
        organ=event.organ,
        stain=event.stain,
        container_format=event.container_format.value,
        original_bytes=event.original.size_bytes,
        uploaded_at=event.occurred_at,
    )


def _deidentified(slide: SlideFields, event: SlideDeidentifiedV1) -> SlideFields:
    """The file's facts; where it states none, the partner's declared ones (issue 18)."""
    declared = event.declared or SlideFactsV1()
    mpp_um = event.mpp_x if event.mpp_x is not None else event.mpp_y
    return replace(
        slide,
        case_id=event.pseudonyms.get("case"),
        specimen_id=event.pseudonyms.get("specimen"),
        patient_id=event.pseudonyms.get("patient"),
        scanner_vendor=event.vendor,
        scanner_model=event.scanner_model or declared.scanner,
        format=event.format,
        width_px=event.width_px,
        height_px=event.height_px,
        mpp_um=mpp_um if mpp_um is not None else declared.mpp_um,
        objective_power=(
            event.objective_power if event.objective_power is not None else declared.objective_power
        ),
        deidentified_bytes=sum(ref.size_bytes for ref in event.artefacts),
        deidentified_at=event.occurred_at,
    )


def _converted(slide: SlideFields, event: SlideConvertedV1) -> SlideFields:
    images = (*event.dicom, *((event.tiff,) if event.tiff is not None else ()))
    levels = [
        {
            "index": level.index,
            "width_px": level.width_px,
            "height_px": level.height_px,
            "tile_size_px": level.tile_size_px,
        }
        for level in event.levels
    ]
    return replace(
        slide,
        level_count=len(event.levels),
        converted_bytes=sum(ref.size_bytes for ref in images),
        levels_json=_json(levels),
        images_json=_json(
            {
                "dicom": [_ref(ref) for ref in event.dicom],
                "tiff": _ref(event.tiff) if event.tiff is not None else None,
            }
        ),
        converted_at=event.occurred_at,
    )


def _qc(slide: SlideFields, event: SlideQcV1) -> SlideFields:
    return replace(
        slide,
        qc_verdict=event.verdict.value,
        qc_reasons_json=_json(list(event.reasons)),
        qc_at=event.occurred_at,
    )


def _with_run(record: SlideSearchRecord, event: SlideInferredV1) -> SlideSearchRecord:
    stored = record.run(event.model_name)
    if stored is not None and event.occurred_at < stored.inferred_at:
        return record
    run = ModelRun(
        model=event.model_name,
        model_version=event.model_version,
        tenant=event.tenant,
        tile_count=event.tile_count,
        tile_mpp_um=event.tile_mpp_um,
        embeddings_json=_ref_json(event.embeddings),
        slide_embedding_json=_ref_json(event.slide_embedding),
        inferred_at=event.occurred_at,
        scores=tuple(sorted(event.summary.items())),
    )
    runs = tuple(
        sorted(
            (*(r for r in record.runs if r.model != event.model_name), run),
            key=lambda r: r.model,
        )
    )
    slide = record.slide
    if slide.inferred_at is None or event.occurred_at >= slide.inferred_at:
        slide = replace(slide, tile_count=event.tile_count, inferred_at=event.occurred_at)
    return replace(record, slide=slide, runs=runs)


def _with_status(
    record: SlideSearchRecord,
    state: SlideState,
    step: Step,
    reason: str | None,
    detail: str,
    event: SlideEvent,
) -> SlideSearchRecord:
    slide = record.slide
    current = (
        SlideRecord(
            slide_id=slide.slide_id,
            tenant=slide.tenant,
            state=SlideState(slide.state),
            step=Step(slide.step),
            reason=slide.reason,
            detail=slide.detail,
            updated_at=slide.status_at,
        )
        if slide.state is not None and slide.step is not None and slide.status_at is not None
        else None
    )
    change = StatusChange(
        slide_id=event.slide_id,
        tenant=event.tenant,
        state=state,
        step=step,
        reason=reason,
        detail=detail,
        occurred_at=event.occurred_at,
    )
    applied = apply(current, change)
    if applied is current:
        return record
    return replace(
        record,
        slide=replace(
            slide,
            state=applied.state.value,
            step=applied.step.value,
            reason=applied.reason,
            detail=applied.detail,
            status_at=applied.updated_at,
        ),
    )


def search_text(record: SlideSearchRecord) -> str:
    """The free-text document of a slide: names and descriptions people type, never numbers.

    Project, species, organ, stain, scanner vendor and model, formats, pseudonymous ids, QC
    reasons, model names and the labels of their outputs (``fraction:tumour`` → ``tumour``),
    and the status detail; words once each, in a stable order, cut at :data:`MAX_TEXT_CHARS`.
    """
    slide = record.slide
    words: list[str | None] = [
        slide.project,
        slide.species,
        slide.organ,
        slide.stain,
        slide.scanner_vendor,
        slide.scanner_model,
        slide.format,
        slide.container_format,
        slide.case_id,
        slide.specimen_id,
        slide.patient_id,
        *json.loads(slide.qc_reasons_json),
    ]
    for run in record.runs:
        words.append(run.model)
        words.extend(output.split(":", 1)[-1] for output, _ in run.scores)
    words.append(slide.detail)
    unique = dict.fromkeys(word.strip() for word in words if word and word.strip())
    return " ".join(unique)[:MAX_TEXT_CHARS]


def _later(stored: datetime | None, seen: datetime) -> datetime:
    return seen if stored is None or seen > stored else stored


def _ref(ref: ObjectRef) -> dict[str, Any]:
    return ref.model_dump(mode="json")


def _ref_json(ref: ObjectRef | None) -> str | None:
    return _json(_ref(ref)) if ref is not None else None


def _json(value: object) -> str:
    """Canonical JSON: the same value always gives the same text (replays compare equal)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))

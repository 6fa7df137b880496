"""The slides inference knows: the facts routes filter on and the QC event a run reads.

``slides.uploaded.v1`` brings the stain, ``slides.qc.v1`` the verdict and the event itself; the
two topics are consumed independently, so either may come first. A QC event never replaces a
newer one (redeliveries and replays are older).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from slidestream_contracts.events import SlideQcV1, SlideUploadedV1
from slidestream_inference.adapters.tables import InferenceSlideRow

WRITE_ATTEMPTS = 3
"""Another replica inserting the same slide (its other topic) is settled by re-reading."""


@dataclass(frozen=True, slots=True)
class SlideFacts:
    slide_id: UUID
    tenant: str
    stain: str | None
    project: str | None
    qc: SlideQcV1 | None
    """The latest QC event, ``None`` until one arrived."""


class SlideRecords(Protocol):
    def record_upload(self, event: SlideUploadedV1) -> SlideFacts: ...

    def record_qc(self, event: SlideQcV1) -> SlideFacts: ...

    def get(self, slide_id: UUID) -> SlideFacts | None: ...


def _facts(row: InferenceSlideRow) -> SlideFacts:
    qc = SlideQcV1.model_validate_json(row.qc_event_json) if row.qc_event_json else None
    return SlideFacts(row.slide_id, row.tenant, row.stain, row.project, qc)


class SqlSlideRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, slide_id: UUID) -> SlideFacts | None:
        with Session(self._engine) as session:
            row = session.get(InferenceSlideRow, slide_id)
            return _facts(row) if row is not None else None

    def record_upload(self, event: SlideUploadedV1) -> SlideFacts:
        def apply(row: InferenceSlideRow) -> None:
            row.stain = event.stain

        return self._upsert(event.slide_id, event.tenant, apply)

    def record_qc(self, event: SlideQcV1) -> SlideFacts:
        def apply(row: InferenceSlideRow) -> None:
            stored = _facts(row).qc
            if stored is not None and stored.occurred_at > event.occurred_at:
                return
            row.qc_verdict = event.verdict.value
            row.qc_event_json = event.model_dump_json()

        return self._upsert(event.slide_id, event.tenant, apply)

    def _upsert(
        self, slide_id: UUID, tenant: str, apply: Callable[[InferenceSlideRow], None]
    ) -> SlideFacts:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with Session(self._engine) as session:
                    row = session.get(InferenceSlideRow, slide_id) or InferenceSlideRow(
                        slide_id=slide_id, tenant=tenant
                    )
                    apply(row)
                    row.updated_at = datetime.now(UTC)
                    session.add(row)
                    session.commit()
                    session.refresh(row)
                    return _facts(row)
            except IntegrityError:
                if attempt == WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

"""The slides the service has seen QC judge, for backfills (read-only).

The consume path records each slide in ``inference_slides`` (its stain and project from
``slides.uploaded.v1``, its verdict and QC event from ``slides.qc.v1``); a backfill selects the
slides a route would have chosen among them, by the same rule.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from slidestream_inference.adapters.routes import Route
from slidestream_inference.adapters.tables import InferenceSlideRow
from slidestream_inference.domain.routing import route_matches


@dataclass(frozen=True, slots=True)
class QcSlide:
    slide_id: UUID
    tenant: str


class SlideCatalogue(Protocol):
    def qc_slides(
        self,
        route: Route,
        *,
        since: datetime | None = None,
        slide_ids: Sequence[UUID] | None = None,
    ) -> list[QcSlide]:
        """The slides ``route`` selects (its tenant, project, stain and ``min_qc``), judged
        since ``since`` when given, among ``slide_ids`` when given, oldest first."""
        ...


class SqlSlideCatalogue:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def qc_slides(
        self,
        route: Route,
        *,
        since: datetime | None = None,
        slide_ids: Sequence[UUID] | None = None,
    ) -> list[QcSlide]:
        verdicts: Collection[str] = route.min_qc.verdicts()
        query = select(InferenceSlideRow).where(
            col(InferenceSlideRow.tenant) == route.tenant,
            col(InferenceSlideRow.qc_verdict).in_(verdicts),
        )
        if since is not None:
            query = query.where(col(InferenceSlideRow.updated_at) >= since)
        if slide_ids is not None:
            query = query.where(col(InferenceSlideRow.slide_id).in_(slide_ids))
        order = (col(InferenceSlideRow.updated_at), col(InferenceSlideRow.slide_id))
        rule = route.rule()
        with Session(self._engine) as session:
            rows = session.exec(query.order_by(*order)).all()
            # Project and stain by the consume path's own rule (stains compare as people type).
            return [
                QcSlide(slide_id=row.slide_id, tenant=row.tenant)
                for row in rows
                if route_matches(
                    rule,
                    tenant=row.tenant,
                    stain=row.stain,
                    project=row.project,
                    verdict=row.qc_verdict or "",
                )
            ]

"""The slides the service has seen QC judge, for backfills (read-only).

The consume path records each slide in ``inference_slides`` (its stain and project from
``slides.uploaded.v1``, its verdict and QC event from ``slides.qc.v1``); a backfill selects the
slides a route would have chosen among them. This module only reads the columns it names.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import DateTime, Engine, String, Uuid, column, select, table

from slidestream_inference.adapters.routes import Route

_SLIDES = table(
    "inference_slides",
    column("slide_id", Uuid()),
    column("tenant", String()),
    column("project", String()),
    column("stain", String()),
    column("qc_verdict", String()),
    column("updated_at", DateTime(timezone=True)),
)


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
        query = select(_SLIDES.c.slide_id, _SLIDES.c.tenant).where(
            _SLIDES.c.tenant == route.tenant, _SLIDES.c.qc_verdict.in_(verdicts)
        )
        if route.project is not None:
            query = query.where(_SLIDES.c.project == route.project)
        if route.stain is not None:
            query = query.where(_SLIDES.c.stain == route.stain)
        if since is not None:
            query = query.where(_SLIDES.c.updated_at >= since)
        if slide_ids is not None:
            query = query.where(_SLIDES.c.slide_id.in_(slide_ids))
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(_SLIDES.c.updated_at, _SLIDES.c.slide_id))
            return [QcSlide(slide_id=row.slide_id, tenant=row.tenant) for row in rows]

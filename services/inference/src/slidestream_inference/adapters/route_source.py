"""Where the workflow learns which models run on a slide: the routes the models API stores.

:class:`SqlRouteSource` reads ``inference_routes``; :class:`MemoryRouteSource` holds rules in
a list (tests, and a service run without the API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, select

from slidestream_inference.adapters.route_tables import InferenceRouteRow
from slidestream_inference.domain.routing import MinQc, RouteMatch, RouteRule, matching_routes


class RouteSource(Protocol):
    def routes_for(
        self, tenant: str, stain: str | None, project: str | None, verdict: str
    ) -> list[RouteMatch]:
        """The models to run on a slide of ``tenant``/``stain``/``project`` with QC
        ``verdict`` (none for ``fail``)."""
        ...


@dataclass
class MemoryRouteSource:
    rules: list[RouteRule] = field(default_factory=list)

    def routes_for(
        self, tenant: str, stain: str | None, project: str | None, verdict: str
    ) -> list[RouteMatch]:
        return matching_routes(
            self.rules, tenant=tenant, stain=stain, project=project, verdict=verdict
        )


class SqlRouteSource:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def routes_for(
        self, tenant: str, stain: str | None, project: str | None, verdict: str
    ) -> list[RouteMatch]:
        with Session(self._engine) as session:
            rows = session.exec(
                select(InferenceRouteRow).where(InferenceRouteRow.tenant == tenant)
            ).all()
            rules = [
                RouteRule(
                    model_name=row.model_name,
                    tenant=row.tenant,
                    project=row.project,
                    stain=row.stain,
                    min_qc=MinQc(row.min_qc),
                    version=row.version,
                )
                for row in rows
            ]
        return matching_routes(rules, tenant=tenant, stain=stain, project=project, verdict=verdict)

"""Where the workflow learns which models run on a slide: the routes the models API stores.

:class:`~slidestream_inference.adapters.routes.SqlRoutes` reads ``inference_routes``;
:class:`MemoryRouteSource` holds rules in a list (tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from slidestream_inference.domain.routing import RouteMatch, RouteRule, matching_routes


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

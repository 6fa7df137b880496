"""Routes (which slides a model runs on), backfills and model loads, in the service's database.

The consume path asks :meth:`SqlRoutes.routes_for` which models a slide that QC judged runs on
(the :class:`~slidestream_inference.adapters.route_source.RouteSource` it reads through), and
reports each backfill request's outcome with :meth:`SqlBackfills.record_backfill_result`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine, delete, update
from sqlmodel import Session, col, select

from slidestream_inference.adapters.route_tables import ANY, BackfillRow, ModelLoadRow, RouteRow
from slidestream_inference.domain.routing import MinQc, RouteMatch, RouteRule, matching_routes


@dataclass(frozen=True, slots=True)
class Route:
    model_name: str
    tenant: str
    min_qc: MinQc
    project: str | None = None
    """``None``: every project of the tenant."""
    stain: str | None = None
    """``None``: every stain."""
    version: str | None = None
    """``None``: the newest version when the slide is analysed."""
    created_at: datetime | None = None

    def rule(self) -> RouteRule:
        return RouteRule(
            model_name=self.model_name,
            tenant=self.tenant,
            project=self.project,
            stain=self.stain,
            min_qc=self.min_qc,
            version=self.version,
        )


@dataclass(frozen=True, slots=True)
class Backfill:
    id: UUID
    model_name: str
    version: str
    requested: int
    done: int
    failed: int
    created_at: datetime


def _route(row: RouteRow) -> Route:
    return Route(
        model_name=row.model_name,
        tenant=row.tenant,
        min_qc=MinQc(row.min_qc),
        project=row.project or None,
        stain=row.stain or None,
        version=row.version,
        created_at=row.created_at,
    )


class RouteStore(Protocol):
    def put(self, route: Route) -> Route: ...

    def delete(self, model_name: str, tenant: str) -> int: ...

    def list_routes(self, model_name: str | None = None) -> list[Route]: ...


class SqlRoutes:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, route: Route) -> Route:
        """Create the route of (model, tenant, project, stain) or replace its ``min_qc`` and
        ``version``; the first creation time is kept."""
        key = (route.model_name, route.tenant, route.project or ANY, route.stain or ANY)
        with Session(self._engine) as session:
            row = session.get(RouteRow, key) or RouteRow(
                model_name=key[0], tenant=key[1], project=key[2], stain=key[3], min_qc=""
            )
            row.min_qc = route.min_qc.value
            row.version = route.version
            session.add(row)
            session.commit()
            session.refresh(row)
            return _route(row)

    def delete(self, model_name: str, tenant: str) -> int:
        """Remove every route of ``model_name`` for ``tenant``; how many there were."""
        with Session(self._engine) as session:
            result = session.execute(
                delete(RouteRow).where(
                    col(RouteRow.model_name) == model_name, col(RouteRow.tenant) == tenant
                )
            )
            session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    def list_routes(self, model_name: str | None = None) -> list[Route]:
        key = (RouteRow.model_name, RouteRow.tenant, RouteRow.project, RouteRow.stain)
        query = select(RouteRow).order_by(*(col(column) for column in key))
        if model_name is not None:
            query = query.where(col(RouteRow.model_name) == model_name)
        with Session(self._engine) as session:
            return [_route(row) for row in session.exec(query)]

    def routes_for(
        self, tenant: str, stain: str | None, project: str | None, verdict: str
    ) -> list[RouteMatch]:
        """The models a slide of ``tenant`` with QC ``verdict`` runs on (the domain's rule:
        :func:`~slidestream_inference.domain.routing.matching_routes`)."""
        return matching_routes(
            [route.rule() for route in self._tenant_routes(tenant)],
            tenant=tenant,
            stain=stain,
            project=project,
            verdict=verdict,
        )

    def _tenant_routes(self, tenant: str) -> list[Route]:
        with Session(self._engine) as session:
            rows = session.exec(select(RouteRow).where(col(RouteRow.tenant) == tenant))
            return [_route(row) for row in rows]


def _backfill(row: BackfillRow) -> Backfill:
    return Backfill(
        id=row.id,
        model_name=row.model_name,
        version=row.version,
        requested=row.requested,
        done=row.done,
        failed=row.failed,
        created_at=row.created_at,
    )


class BackfillStore(Protocol):
    def create(self, backfill_id: UUID, model_name: str, version: str, requested: int) -> None: ...

    def set_requested(self, backfill_id: UUID, requested: int) -> None: ...

    def get(self, backfill_id: UUID) -> Backfill | None: ...


class SqlBackfills:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, backfill_id: UUID, model_name: str, version: str, requested: int) -> None:
        with Session(self._engine) as session:
            session.add(
                BackfillRow(
                    id=backfill_id, model_name=model_name, version=version, requested=requested
                )
            )
            session.commit()

    def set_requested(self, backfill_id: UUID, requested: int) -> None:
        """Correct the count when publishing stopped part-way (only those published count)."""
        with Session(self._engine) as session:
            session.execute(
                update(BackfillRow)
                .where(col(BackfillRow.id) == backfill_id)
                .values(requested=requested)
            )
            session.commit()

    def get(self, backfill_id: UUID) -> Backfill | None:
        with Session(self._engine) as session:
            row = session.get(BackfillRow, backfill_id)
            return _backfill(row) if row is not None else None

    def record_backfill_result(self, backfill_id: UUID, ok: bool) -> None:
        """Count one request of the backfill as done (``ok``) or failed. The consume path calls
        it once per decided request (not on a redelivery of one already decided). The increment
        happens in the database, so replicas counting at once do not lose updates."""
        column = BackfillRow.done if ok else BackfillRow.failed
        with Session(self._engine) as session:
            session.execute(
                update(BackfillRow)
                .where(col(BackfillRow.id) == backfill_id)
                .values({col(column): col(column) + 1})
            )
            session.commit()


class LoadStore(Protocol):
    def record(self, model_name: str, canary_s: float) -> None: ...

    def loaded_at(self, model_name: str) -> datetime | None: ...

    def forget(self, model_name: str) -> None: ...

    def wanted(self) -> list[str]:
        """The models loaded through the models API and not unloaded since, by name."""
        ...


class SqlModelLoads:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, model_name: str, canary_s: float) -> None:
        with Session(self._engine) as session:
            row = session.get(ModelLoadRow, model_name) or ModelLoadRow(model_name=model_name)
            row.loaded_at = datetime.now(UTC)
            row.canary_s = canary_s
            session.add(row)
            session.commit()

    def loaded_at(self, model_name: str) -> datetime | None:
        with Session(self._engine) as session:
            row = session.get(ModelLoadRow, model_name)
            return row.loaded_at if row is not None else None

    def wanted(self) -> list[str]:
        with Session(self._engine) as session:
            names = session.exec(select(ModelLoadRow.model_name)).all()
            return sorted(names)

    def forget(self, model_name: str) -> None:
        with Session(self._engine) as session:
            session.execute(delete(ModelLoadRow).where(col(ModelLoadRow.model_name) == model_name))
            session.commit()

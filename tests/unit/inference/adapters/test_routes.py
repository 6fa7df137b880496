"""Routes, backfills and loads in SQLite, through the service's migrations."""

from __future__ import annotations

from uuid import uuid4

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from slidestream_inference.adapters.routes import (
    Route,
    SqlBackfills,
    SqlModelLoads,
    SqlRoutes,
)
from slidestream_inference.adapters.tables import metadata
from slidestream_inference.domain.routing import MinQc

TENANT = "lab-a"


def test_the_migrations_create_the_tables_as_declared(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []


def test_a_slide_runs_on_the_routes_of_its_tenant_project_stain_and_verdict(
    engine: Engine,
) -> None:
    routes = SqlRoutes(engine)
    routes.put(Route("any", TENANT, MinQc.WARN))
    routes.put(Route("he-only", TENANT, MinQc.PASS, stain="H&E"))
    routes.put(Route("project", TENANT, MinQc.PASS, project="p1", version="2"))
    routes.put(Route("elsewhere", "lab-b", MinQc.WARN))

    def names(project: str | None, stain: str | None, verdict: str) -> list[str]:
        return [r.model_name for r in routes.routes_for(TENANT, stain, project, verdict)]

    assert names("p1", "H&E", "pass") == ["any", "he-only", "project"]
    assert names("p2", "H&E", "warn") == ["any"]
    assert names(None, None, "pass") == ["any"]
    assert names("p1", "H&E", "fail") == []
    pinned = routes.routes_for(TENANT, None, "p1", "pass")
    assert [(r.model_name, r.version) for r in pinned] == [("any", None), ("project", "2")]


def test_replacing_a_route_keeps_its_key_and_creation_time(engine: Engine) -> None:
    routes = SqlRoutes(engine)
    first = routes.put(Route("tissue", TENANT, MinQc.PASS, stain="H&E"))

    second = routes.put(Route("tissue", TENANT, MinQc.WARN, stain="H&E", version="3"))

    assert second.created_at == first.created_at
    assert [(r.min_qc, r.version) for r in routes.list_routes()] == [(MinQc.WARN, "3")]
    assert routes.delete("tissue", "lab-other") == 0
    assert routes.delete("tissue", TENANT) == 1


def test_backfill_results_add_up_across_writers(engine: Engine) -> None:
    backfill_id = uuid4()
    SqlBackfills(engine).create(backfill_id, "tissue", "1", requested=3)

    for ok in (True, True, False):
        SqlBackfills(engine).record_backfill_result(backfill_id, ok=ok)

    found = SqlBackfills(engine).get(backfill_id)
    assert found is not None
    assert (found.requested, found.done, found.failed) == (3, 2, 1)
    assert SqlBackfills(engine).get(uuid4()) is None


def test_a_load_is_recorded_until_the_unload(engine: Engine) -> None:
    loads = SqlModelLoads(engine)
    loads.record("tissue", canary_s=0.2)
    first = loads.loaded_at("tissue")
    loads.record("tissue", canary_s=0.1)

    assert first is not None
    assert loads.loaded_at("tissue") is not None
    loads.forget("tissue")
    assert loads.loaded_at("tissue") is None

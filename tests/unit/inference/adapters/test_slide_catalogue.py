"""Backfills choose among the slides the service recorded, as a route would have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy import DateTime, Engine, String, Uuid, column, insert, table

from slidestream_inference.adapters.routes import Route
from slidestream_inference.adapters.slide_catalogue import SqlSlideCatalogue
from slidestream_inference.domain.routing import MinQc

TENANT = "lab-a"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
# The consume path's table, as far as the catalogue reads it.
SLIDES = table(
    "inference_slides",
    column("slide_id", Uuid()),
    column("tenant", String()),
    column("project", String()),
    column("stain", String()),
    column("qc_verdict", String()),
    column("updated_at", DateTime(timezone=True)),
)


def record(
    engine: Engine, *rows: tuple[str, str | None, str | None, str | None, datetime]
) -> list[UUID]:
    ids = [uuid4() for _ in rows]
    with engine.begin() as connection:
        connection.execute(
            insert(SLIDES),
            [
                {
                    "slide_id": slide_id,
                    "tenant": tenant,
                    "project": project,
                    "stain": stain,
                    "qc_verdict": verdict,
                    "updated_at": judged_at,
                }
                for slide_id, (tenant, project, stain, verdict, judged_at) in zip(
                    ids, rows, strict=True
                )
            ],
        )
    return ids


def test_a_route_selects_its_tenants_slides_by_project_stain_and_verdict(
    engine: Engine,
) -> None:
    hour = timedelta(hours=1)
    passed, warned, _failed, _other, other_stain, _unjudged = record(
        engine,
        (TENANT, "p1", "H&E", "pass", NOW),
        (TENANT, "p1", "H&E", "warn", NOW + hour),
        (TENANT, "p1", "H&E", "fail", NOW + 2 * hour),
        ("lab-b", "p1", "H&E", "pass", NOW + 3 * hour),
        (TENANT, "p2", "IHC", "pass", NOW + 4 * hour),
        (TENANT, "p1", "H&E", None, NOW + 5 * hour),
    )
    catalogue = SqlSlideCatalogue(engine)
    any_stain = Route("m", TENANT, MinQc.WARN)
    he_only = Route("m", TENANT, MinQc.WARN, stain="H&E")

    def chosen(
        route: Route, since: datetime | None = None, slide_ids: list[UUID] | None = None
    ) -> list[UUID]:
        found = catalogue.qc_slides(route, since=since, slide_ids=slide_ids)
        return [slide.slide_id for slide in found]

    assert chosen(he_only) == [passed, warned]
    assert chosen(Route("m", TENANT, MinQc.PASS)) == [passed, other_stain]
    assert chosen(Route("m", TENANT, MinQc.PASS, project="p2")) == [other_stain]
    assert chosen(he_only, since=NOW + hour / 2) == [warned]
    assert chosen(any_stain, slide_ids=[other_stain, warned]) == [warned, other_stain]

"""Support for the search tests: a migrated catalog database and slides written straight into the
search tables (the projection's job in production), so a query test states exactly its rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, insert, text

from slidestream_catalog import search_api
from slidestream_catalog.adapters.search_reader import SqlSlideSearch
from slidestream_catalog.adapters.search_tables import (
    SearchMeasureRow,
    SearchModelRunRow,
    SearchScoreRow,
    SearchSlideRow,
)
from slidestream_catalog.main import MIGRATIONS_DIR
from slidestream_catalog.settings import CatalogSettings
from slidestream_platform.db import DatabaseSettings, make_engine, upgrade_to_head

SERVICE = "catalog"


@dataclass
class Slide:
    """One catalogued slide: its columns (``search_slide``), QC measures and model scores."""

    tenant: str
    columns: dict[str, Any] = field(default_factory=dict)
    qc: dict[str, float] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    slide_id: UUID = field(default_factory=uuid4)


def sqlite_engine(folder: Path) -> Engine:
    engine = make_engine(DatabaseSettings(data_dir=folder), SERVICE)
    upgrade_to_head(engine, SERVICE, MIGRATIONS_DIR)
    return engine


def postgres_engine(url: str, schema: str) -> Engine:
    """An engine on a throwaway schema (the service name decides the schema), migrated."""
    engine = make_engine(DatabaseSettings(url=url), schema)
    upgrade_to_head(engine, schema, MIGRATIONS_DIR)
    return engine


def drop_schema(engine: Engine, schema: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def add_slides(engine: Engine, slides: Iterable[Slide], *, generation: int = 1) -> None:
    slide_rows, measures, scores, runs = [], [], [], []
    for slide in slides:
        row = {"generation": generation, "slide_id": slide.slide_id, "tenant": slide.tenant}
        row |= {"levels_json": "[]", "images_json": "{}", "detail": "", "text": ""}
        slide_rows.append(row | slide.columns)
        measures += [
            {"generation": generation, "slide_id": slide.slide_id, "name": name, "value": value}
            | {"unit": "", "verdict": ""}
            for name, value in slide.qc.items()
        ]
        for model, outputs in slide.scores.items():
            runs.append(
                {"generation": generation, "slide_id": slide.slide_id, "model": model}
                | {"model_version": "1", "tenant": slide.tenant, "tile_count": 1}
                | {"inferred_at": datetime(2026, 1, 1, tzinfo=UTC)}
            )
            scores += [
                {"generation": generation, "slide_id": slide.slide_id, "model": model}
                | {"output": output, "value": value}
                for output, value in outputs.items()
            ]
    with engine.begin() as connection:
        for table, rows in (
            (SearchSlideRow, slide_rows),
            (SearchMeasureRow, measures),
            (SearchScoreRow, scores),
            (SearchModelRunRow, runs),
        ):
            if rows:
                connection.execute(insert(table.__table__), _uniform(rows))  # type: ignore[attr-defined]


def set_live(engine: Engine, generation: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE search_generation SET live = :g WHERE id = 1"), {"g": generation}
        )


def _uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # executemany needs the same keys in every row.
    keys = {key for row in rows for key in row}
    return [{key: row.get(key) for key in keys} for row in rows]


class FakeTenants:
    """Token → tenant without the upload API: the token *is* ``token-<tenant>``."""

    async def tenant_for(self, token: str) -> str | None:
        return token.removeprefix("token-") if token.startswith("token-") else None


def search_app(engine: Engine, tenants: Any, **settings: Any) -> FastAPI:
    """The search router as main.py wires it, without Kafka (no broker in the lifespan)."""
    app = FastAPI()
    app.include_router(search_api.router)
    for error, handler in search_api.EXCEPTION_HANDLERS.items():
        app.exception_handler(error)(handler)
    app.state.settings = CatalogSettings(**settings)
    app.state.tenants = tenants
    app.state.search = SqlSlideSearch(
        engine, statement_timeout_ms=app.state.settings.search_statement_timeout_ms
    )
    return app


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    """A client that calls the app in-process (``async with`` it)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://search")


def bearer(token: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {token}"}

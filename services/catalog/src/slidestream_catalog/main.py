"""Wiring of the catalog service: settings → adapters → handlers → app. No logic lives here."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from slidestream_catalog import api, handlers
from slidestream_catalog.adapters.search_store import SqlSearchStore
from slidestream_catalog.ports import RunIndexer
from slidestream_catalog.settings import CatalogSettings
from slidestream_catalog.tenants import TenantResolver
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import database_check, prepare_storage
from slidestream_platform.db import make_engine
from slidestream_platform.service import run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: CatalogSettings) -> FastAPI:
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    bus = make_bus(settings, step=None, tracer_provider=tracer_provider)
    engine = make_engine(settings.database, settings.service_name)
    search = SqlSearchStore(engine)
    run_indexers: list[RunIndexer] = []

    bus.broker.context.set_global("search", search)
    bus.broker.context.set_global("run_indexers", run_indexers)
    for topic, handler in handlers.BY_TOPIC.items():
        bus.subscribe(topic, handler)
    app = service_app(
        bus,
        readiness_checks={"database": database_check(engine)},
        routers=[api.router],
        on_startup=[prepare_storage(engine, settings.service_name, MIGRATIONS_DIR)],
    )
    app.state.search = search
    app.state.tenants = TenantResolver(
        settings.upload_api_url, settings.token_cache_s, httpx.AsyncClient()
    )
    return app


def main() -> None:
    run_service(CatalogSettings(), create_app)


if __name__ == "__main__":
    main()

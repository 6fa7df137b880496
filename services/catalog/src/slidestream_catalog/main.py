"""Wiring of the catalog service: settings → adapters → handlers → app. No logic lives here."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from slidestream_catalog import api, handlers, search_api
from slidestream_catalog.adapters.repository import SlideRow
from slidestream_catalog.adapters.search_reader import SqlSlideSearch
from slidestream_catalog.settings import CatalogSettings
from slidestream_catalog.tenants import TenantResolver
from slidestream_contracts.topics import Topic
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import database_check, prepare_storage
from slidestream_platform.db import make_engine
from slidestream_platform.projection import SqlSlideStates
from slidestream_platform.service import run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
AUTH_TIMEOUT_S = 10.0


def create_app(settings: CatalogSettings) -> FastAPI:
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    bus = make_bus(settings, step=None, tracer_provider=tracer_provider)
    engine = make_engine(settings.database, settings.service_name)
    slides = SqlSlideStates(engine, SlideRow)
    auth_client = httpx.AsyncClient(timeout=AUTH_TIMEOUT_S)

    bus.broker.context.set_global("slides", slides)
    bus.subscribe(Topic.SLIDES_STATUS, handlers.on_slide_status)
    app = service_app(
        bus,
        readiness_checks={"database": database_check(engine)},
        routers=[api.router, search_api.router],
        on_startup=[prepare_storage(engine, settings.service_name, MIGRATIONS_DIR)],
        on_shutdown=[auth_client.aclose],
    )
    for error, handler in search_api.EXCEPTION_HANDLERS.items():
        app.exception_handler(error)(handler)
    app.state.settings = settings
    app.state.slides = slides
    app.state.tenants = TenantResolver(settings.upload_api_url, settings.token_cache_s, auth_client)
    app.state.search = SqlSlideSearch(
        engine, statement_timeout_ms=settings.search_statement_timeout_ms
    )
    return app


def main() -> None:
    run_service(CatalogSettings(), create_app)


if __name__ == "__main__":
    main()

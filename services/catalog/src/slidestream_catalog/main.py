"""Wiring of the catalog service: settings → adapters → handlers → app. No logic lives here."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from slidestream_catalog import api, handlers
from slidestream_catalog.adapters.repository import SlideRow
from slidestream_catalog.settings import CatalogSettings
from slidestream_contracts.topics import Topic
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import database_check, prepare_storage
from slidestream_platform.db import make_engine
from slidestream_platform.projection import SqlSlideStates
from slidestream_platform.service import run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: CatalogSettings) -> FastAPI:
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    bus = make_bus(settings, step=None, tracer_provider=tracer_provider)
    engine = make_engine(settings.database, settings.service_name)
    slides = SqlSlideStates(engine, SlideRow)

    bus.broker.context.set_global("slides", slides)
    bus.subscribe(Topic.SLIDES_STATUS, handlers.on_slide_status)
    app = service_app(
        bus,
        readiness_checks={"database": database_check(engine)},
        routers=[api.router],
        on_startup=[prepare_storage(engine, settings.service_name, MIGRATIONS_DIR)],
    )
    app.state.slides = slides
    return app


def main() -> None:
    run_service(CatalogSettings(), create_app)


if __name__ == "__main__":
    main()

"""Wiring of the convert service: settings → adapters → workflow → app. No logic lives here."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_convert import handlers
from slidestream_convert.adapters.converter import SlideConverter, WsiConverter
from slidestream_convert.adapters.tables import ConversionRow
from slidestream_convert.domain.inputs import EVENT_ID_NAMESPACE
from slidestream_convert.settings import ConvertSettings
from slidestream_convert.workflow import ConvertMetrics, ConvertWorkflow
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import prepare_storage, storage_checks
from slidestream_platform.db import make_engine
from slidestream_platform.decisions import DecisionPublisher, SqlDecisionRecords
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.service import run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: ConvertSettings, converter: SlideConverter | None = None) -> FastAPI:
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    bus = make_bus(settings, step=Step.CONVERT, tracer_provider=tracer_provider)
    engine = make_engine(settings.database, settings.service_name)
    store = MinioObjectStore(settings.object_store)
    workflow = ConvertWorkflow(
        settings=settings,
        store=store,
        records=SqlDecisionRecords(engine, ConversionRow),
        converter=converter or WsiConverter(),
        decisions=DecisionPublisher.for_bus(bus, EVENT_ID_NAMESPACE),
        metrics=ConvertMetrics.register(bus.metrics.registry),
    )
    buckets = [settings.deidentified_bucket, settings.converted_bucket]

    bus.broker.context.set_global("workflow", workflow)
    bus.subscribe(Topic.SLIDES_DEIDENTIFIED, handlers.on_slide_deidentified)
    app = service_app(
        bus,
        readiness_checks=storage_checks(engine, store, buckets),
        on_startup=[prepare_storage(engine, settings.service_name, MIGRATIONS_DIR, store, buckets)],
    )
    app.state.settings = settings
    app.state.workflow = workflow
    return app


def main() -> None:
    run_service(ConvertSettings(), create_app)


if __name__ == "__main__":
    main()

"""Wiring of the qc service: settings → adapters → workflow → app. No logic lives here."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import prepare_storage, storage_checks
from slidestream_platform.db import make_engine
from slidestream_platform.decisions import DecisionPublisher, SqlDecisionRecords
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.service import run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider
from slidestream_qc import handlers
from slidestream_qc.adapters.runner import QcRunner, WsiQcRunner
from slidestream_qc.adapters.tables import QcDecisionRow
from slidestream_qc.domain.outcome import EVENT_ID_NAMESPACE
from slidestream_qc.settings import QcSettings
from slidestream_qc.workflow import QcMetrics, QcWorkflow

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: QcSettings, runner: QcRunner | None = None) -> FastAPI:
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    bus = make_bus(settings, step=Step.QC, tracer_provider=tracer_provider)
    engine = make_engine(settings.database, settings.service_name)
    store = MinioObjectStore(settings.object_store)
    workflow = QcWorkflow(
        settings=settings,
        store=store,
        records=SqlDecisionRecords(engine, QcDecisionRow),
        runner=runner or WsiQcRunner(),
        decisions=DecisionPublisher.for_bus(bus, EVENT_ID_NAMESPACE),
        metrics=QcMetrics.register(bus.metrics.registry),
    )
    buckets = [settings.converted_bucket, settings.derived_bucket]

    bus.broker.context.set_global("workflow", workflow)
    bus.subscribe(Topic.SLIDES_CONVERTED, handlers.on_slide_converted)
    app = service_app(
        bus,
        readiness_checks=storage_checks(engine, store, buckets),
        on_startup=[prepare_storage(engine, settings.service_name, MIGRATIONS_DIR, store, buckets)],
    )
    app.state.settings = settings
    app.state.workflow = workflow
    return app


def main() -> None:
    run_service(QcSettings(), create_app)


if __name__ == "__main__":
    main()

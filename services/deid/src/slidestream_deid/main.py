"""Wiring of the deid service: settings → adapters → workflow → app. No logic lives here."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_deid import handlers
from slidestream_deid.adapters.repository import SqlDeidRecords
from slidestream_deid.adapters.slides import WsiSlideTools
from slidestream_deid.settings import DeidSettings
from slidestream_deid.workflow import DeidWorkflow
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import prepare_storage, storage_checks
from slidestream_platform.db import make_engine
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.service import PeriodicJob, run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
logger = logging.getLogger(__name__)


def create_app(settings: DeidSettings) -> FastAPI:
    key = settings.pseudonym_key()  # fail at start, not at the first slide
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    bus = make_bus(settings, step=Step.DEID, tracer_provider=tracer_provider)
    engine = make_engine(settings.database, settings.service_name)
    store = MinioObjectStore(settings.object_store)
    workflow = DeidWorkflow(
        settings=settings,
        store=store,
        records=SqlDeidRecords(engine),
        slides=WsiSlideTools(),
        publisher=bus.publisher,
        key=key,
    )

    buckets = [settings.quarantine_bucket, settings.deidentified_bucket]

    bus.broker.context.set_global("workflow", workflow)
    bus.subscribe(Topic.SLIDES_UPLOADED, handlers.on_slide_uploaded)
    app = service_app(
        bus,
        readiness_checks=storage_checks(engine, store, buckets),
        on_startup=[prepare_storage(engine, settings.service_name, MIGRATIONS_DIR, store, buckets)],
        periodic_jobs=[
            PeriodicJob(
                "sweep-quarantine", settings.retention_sweep_interval_s, workflow.sweep_retention
            )
        ],
    )
    app.state.settings = settings
    app.state.workflow = workflow
    return app


def main() -> None:
    run_service(DeidSettings(), create_app)


if __name__ == "__main__":
    main()

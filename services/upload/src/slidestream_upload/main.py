"""The upload service's process: settings → adapters → workflow and reconciler → app.

Besides the wiring, two things happen here because they belong to the process, not to a use
case: start-up preparation (migrations, the quarantine bucket, best-effort expiry of abandoned
multipart uploads) and the mapping of ``HTTPException`` to the ``{"reason", "message"}`` bodies
partners read. The partner API is served on ``HTTP_PORT``, tusd's hooks on ``HOOKS_PORT`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from slidestream_contracts.topics import Topic
from slidestream_platform.attempts import SqlDeliveryAttempts
from slidestream_platform.broker import make_bus
from slidestream_platform.checks import AsyncHook, prepare_storage, storage_checks
from slidestream_platform.db import make_engine
from slidestream_platform.decisions import DecisionPublisher
from slidestream_platform.objectstore import ObjectStore
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.projection import SqlSlideStates
from slidestream_platform.service import InternalRoutes, PeriodicJob, run_service, service_app
from slidestream_platform.telemetry import make_tracer_provider
from slidestream_upload import api, handlers, hooks
from slidestream_upload.adapters.lifecycle import abort_incomplete_multipart_uploads
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import DeliveryAttemptRow, SlideStateRow
from slidestream_upload.adapters.tusd import TusdAdmin
from slidestream_upload.domain.rate_limits import PartnerRateLimits, Rate, TokenBuckets
from slidestream_upload.reconciler import UploadReconciler
from slidestream_upload.settings import UploadSettings
from slidestream_upload.workflow import EVENT_ID_NAMESPACE, UploadWorkflow

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: UploadSettings) -> FastAPI:
    hooks_secret = settings.tusd_hooks_secret()  # fail at start, not at the first upload
    tracer_provider = make_tracer_provider(
        settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    engine = make_engine(settings.database, settings.service_name)
    attempts = SqlDeliveryAttempts(engine, DeliveryAttemptRow, settings.consumer_group)
    bus = make_bus(settings, step=None, tracer_provider=tracer_provider, attempts=attempts)
    uploads = UploadRepository(engine)
    slide_states = SqlSlideStates(engine, SlideStateRow)
    store = MinioObjectStore(settings.object_store)
    workflow = UploadWorkflow(
        settings=settings,
        uploads=uploads,
        store=store,
        publisher=bus.publisher,
        decisions=DecisionPublisher.for_bus(bus, EVENT_ID_NAMESPACE),
    )
    reconciler = UploadReconciler(
        settings=settings,
        workflow=workflow,
        uploads=uploads,
        store=store,
        tusd=TusdAdmin(settings.tusd_internal_url or settings.tus_url),
    )
    bus.broker.context.set_global("slide_states", slide_states)
    bus.subscribe(Topic.SLIDES_STATUS, handlers.on_slide_status)
    app = service_app(
        bus,
        readiness_checks=storage_checks(engine, store, [settings.quarantine_bucket]),
        routers=[api.router],
        internal=InternalRoutes(port=settings.hooks_port, routers=[hooks.router]),
        on_startup=[_prepare(settings, engine, store)],
        periodic_jobs=[
            PeriodicJob(
                "reconcile-uploads", settings.reconcile_interval_s, reconciler.reconcile_once
            )
        ],
    )

    app.exception_handler(HTTPException)(_problem_response)
    app.state.settings = settings
    app.state.uploads = uploads
    app.state.slide_states = slide_states
    app.state.workflow = workflow
    app.state.publisher = bus.publisher
    app.state.rate_limits = partner_rate_limits(settings)
    app.state.tusd_hooks_secret = hooks_secret
    return app


def partner_rate_limits(settings: UploadSettings) -> PartnerRateLimits:
    return PartnerRateLimits(
        per_token=TokenBuckets(
            Rate(settings.rate_limit_token_per_s, settings.rate_limit_token_burst)
        ),
        per_address=TokenBuckets(
            Rate(settings.rate_limit_address_per_s, settings.rate_limit_address_burst)
        ),
    )


def _prepare(settings: UploadSettings, engine: Engine, store: ObjectStore) -> AsyncHook:
    """Migrations and the quarantine bucket, then best-effort expiry of abandoned multipart
    uploads."""
    prepare_store = prepare_storage(
        engine, settings.service_name, MIGRATIONS_DIR, store, [settings.quarantine_bucket]
    )

    async def prepare() -> None:
        await prepare_store()
        with contextlib.suppress(Exception):  # best effort: not every S3 server has lifecycle
            await asyncio.to_thread(
                abort_incomplete_multipart_uploads,
                settings,
                days=settings.multipart_abort_after_days,
            )

    return prepare


async def _problem_response(_request: Request, error: HTTPException) -> JSONResponse:
    """An ``HTTPException`` as the ``{"reason", "message"}`` body partners read."""
    body = (
        error.detail
        if isinstance(error.detail, dict)
        else {"reason": "error", "message": str(error.detail)}
    )
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def main() -> None:
    run_service(UploadSettings(), create_app)


if __name__ == "__main__":
    main()

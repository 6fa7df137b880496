"""The process shape every service shares: an ASGI app with the broker in its lifespan.

* ``GET /healthz`` — liveness: the process serves HTTP (Kubernetes restarts it otherwise);
* ``GET /readyz`` — readiness: Kafka answers, every check the service registered (object store,
  database, Triton...) passes and no consumed message waits for a dependency that is down
  (:mod:`slidestream_platform.outages`); 503 with the failing names otherwise;
* ``GET /metrics`` — Prometheus exposition of the service's registry.

Graceful shutdown: on SIGTERM uvicorn stops accepting requests and runs the lifespan exit, which
stops the broker; FastStream lets the message in flight finish before its consumer closes, so the
offset of a finished message is committed and an unfinished one is redelivered elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from slidestream_platform.broker import ServiceBus
from slidestream_platform.logging import configure_logging
from slidestream_platform.settings import ServiceSettings

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises when a dependency is not usable; returns otherwise."""


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """Work a service repeats in the background (reconciliation, retention sweeps).

    It runs once right after start (catching up on what happened while the service was down),
    then every ``interval_s``; a failing round is logged and the next one retries. Jobs are
    cancelled before the broker stops, so shutdown does not wait for a sleeping loop.
    """

    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]


async def _repeat(job: PeriodicJob) -> None:
    while True:
        try:
            await job.run()
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("periodic job failed", extra={"job": job.name})
        await asyncio.sleep(job.interval_s)


READINESS_TIMEOUT_S = 3.0
GRACEFUL_SHUTDOWN_TIMEOUT_S = 30


def service_app(
    bus: ServiceBus,
    *,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    routers: Sequence[APIRouter] = (),
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    periodic_jobs: Sequence[PeriodicJob] = (),
) -> FastAPI:
    """The app; ``on_shutdown`` hooks (closing clients) run after the broker has stopped."""
    checks = dict(readiness_checks or {})

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for hook in on_startup:
            await hook()
        await bus.broker.start()
        tasks = [asyncio.create_task(_repeat(job), name=job.name) for job in periodic_jobs]
        logger.info("service started", extra={"service": bus.settings.service_name})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await bus.broker.stop()
            for hook in on_shutdown:
                await hook()
            logger.info("service stopped", extra={"service": bus.settings.service_name})

    app = FastAPI(title=f"slidestream {bus.settings.service_name}", lifespan=lifespan)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        failures: dict[str, str] = {}
        if not await bus.broker.ping(timeout=READINESS_TIMEOUT_S):
            failures["kafka"] = "broker did not answer"
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_S)
            except Exception as error:  # a failing check is reported, not raised
                failures[name] = type(error).__name__
        # What a waiting delivery met is down even where a probe passes (a full bucket answers).
        for name, detail in bus.delivery.outages.current().items():
            failures.setdefault(name, detail)
        bus.metrics.ready.set(0 if failures else 1)
        status = 503 if failures else 200
        return JSONResponse({"ready": not failures, "failures": failures}, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(bus.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run the service until SIGTERM/SIGINT, then shut down gracefully."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,  # keep the structured logging configured in main.py
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT_S,
    )


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_service(settings: SettingsT, create_app: Callable[[SettingsT], FastAPI]) -> None:
    """A service's ``main()``: structured logging, then the app from its factory, served."""
    configure_logging(settings.service_name, level=settings.log_level, json_lines=settings.log_json)
    serve(create_app(settings), host=settings.http_host, port=settings.http_port)

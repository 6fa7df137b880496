"""The process shape every service shares: an ASGI app with the broker in its lifespan.

* ``GET /healthz`` — liveness: the process serves HTTP and its consumer still polls Kafka; 503
  naming the topics whose message has been handled for longer than
  ``KAFKA_MAX_POLL_INTERVAL_S`` + ``KAFKA_LIVENESS_MARGIN_S`` without a poll (a handler that keeps
  its group membership polls while it works), so Kubernetes restarts a stuck consumer
  (:mod:`slidestream_platform.liveness`);
* ``GET /readyz`` — readiness: Kafka answers and every check the service registered (object store,
  database, Triton...) passes and no consumed message waits for a dependency that is down
  (:mod:`slidestream_platform.outages`); each dependency's state is listed (``ok`` or why not),
  503 when one is not ok;
* ``GET /metrics`` — Prometheus exposition of the service's registry.

A service may also serve routes on an internal port of their own (:class:`InternalRoutes`: tusd's
hooks): the public port answers 404 for them and the internal port answers nothing else, so a
NetworkPolicy can admit only their one caller to that port. Both ports are one uvicorn server
(one lifespan, one graceful shutdown); a request goes to the app of the socket it arrived on.

Graceful shutdown: on SIGTERM uvicorn stops accepting requests and runs the lifespan exit, which
stops the broker; FastStream lets the message in flight finish before its consumer closes, so the
offset of a finished message is committed and an unfinished one is redelivered elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

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


@dataclass(frozen=True, slots=True)
class InternalRoutes:
    """Routes served on ``port`` only, never on the public port (``HTTP_PORT``)."""

    port: int
    routers: Sequence[APIRouter]


class ServiceApp(FastAPI):
    """A service's public app, and the apps of its internal ports (:func:`serve` binds them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.internal_apps: dict[int, FastAPI] = {}
        """Internal port → the app that alone answers there; it shares this app's ``state``."""


def _internal_app(public: FastAPI, routes: InternalRoutes) -> FastAPI:
    # No OpenAPI document: the internal port's only caller knows its routes.
    app = FastAPI(title=f"{public.title} (internal)", openapi_url=None)
    app.state = public.state
    for router in routes.routers:
        app.include_router(router)
    return app


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
    internal: InternalRoutes | None = None,
) -> ServiceApp:
    """The app; ``on_shutdown`` hooks (closing clients) run after the broker has stopped;
    ``internal`` routes are served on their own port only."""
    lifespan = _lifespan(bus, on_startup, on_shutdown, periodic_jobs)
    app = ServiceApp(title=f"slidestream {bus.settings.service_name}", lifespan=lifespan)
    _add_probes(app, bus, dict(readiness_checks or {}))
    for router in routers:
        app.include_router(router)
    if internal is not None:
        if internal.port == bus.settings.http_port:
            raise ValueError(f"internal routes need a port other than HTTP_PORT {internal.port}")
        app.internal_apps = {internal.port: _internal_app(app, internal)}
    return app


def _lifespan(
    bus: ServiceBus,
    on_startup: Sequence[Callable[[], Awaitable[None]]],
    on_shutdown: Sequence[Callable[[], Awaitable[None]]],
    periodic_jobs: Sequence[PeriodicJob],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
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

    return lifespan


def _add_probes(app: FastAPI, bus: ServiceBus, checks: dict[str, ReadinessCheck]) -> None:
    """``/healthz`` (a stalled consumer fails it), ``/readyz`` (each dependency), ``/metrics``."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        watch = bus.delivery.watch
        stalled = watch.stalled()
        if stalled:
            logger.error("consumer stalled", extra={"stalled_s": stalled})
            body = {"status": "stalled", "stalled_s": stalled, "stall_after_s": watch.stall_after_s}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        async def kafka_state() -> str:
            answered = await bus.broker.ping(timeout=READINESS_TIMEOUT_S)
            return "ok" if answered else "broker did not answer"

        # Concurrently: the probe waits for the slowest dependency, not for their sum.
        states = await asyncio.gather(kafka_state(), *map(_dependency_state, checks.values()))
        dependencies = dict(zip(["kafka", *checks], states, strict=True))
        # What a waiting delivery met is down even where a probe passes (a full bucket answers).
        for name, detail in bus.delivery.outages.current().items():
            if dependencies.get(name, "ok") == "ok":
                dependencies[name] = detail
        failures = {name: state for name, state in dependencies.items() if state != "ok"}
        bus.metrics.ready.set(0 if failures else 1)
        return JSONResponse(
            {"ready": not failures, "dependencies": dependencies, "failures": failures},
            status_code=503 if failures else 200,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(bus.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _dependency_state(check: ReadinessCheck) -> str:
    """``ok``, or the class of what the check raised (``TimeoutError`` past the limit)."""
    try:
        await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_S)
    except Exception as error:  # a failing check is reported, not raised
        # The class only: a message may carry an endpoint or a credential's name.
        return type(error).__name__
    return "ok"


class ByLocalPort:
    """One ASGI app over several listening sockets: an HTTP request goes to the app of the port
    it arrived on (uvicorn's ``scope["server"]`` is the local socket's address), anything else
    (lifespan, another port) to ``public``."""

    def __init__(self, public: ASGIApp, by_port: Mapping[int, ASGIApp]) -> None:
        self._public = public
        self._by_port = dict(by_port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._public
        server = scope.get("server")
        if scope["type"] in ("http", "websocket") and server is not None:
            app = self._by_port.get(server[1], self._public)
        await app(scope, receive, send)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def listening_server(
    app: FastAPI, *, host: str, port: int
) -> tuple[uvicorn.Server, list[socket.socket]]:
    """The uvicorn server of ``app`` and its bound sockets: ``port`` first, then a
    :class:`ServiceApp`'s internal ports (each answered by its own app only)."""
    internal = app.internal_apps if isinstance(app, ServiceApp) else {}
    sockets = [_listen(host, port)]
    by_port: dict[int, ASGIApp] = {}
    for internal_port, internal_app in internal.items():
        sockets.append(_listen(host, internal_port))
        by_port[sockets[-1].getsockname()[1]] = internal_app
    config = uvicorn.Config(
        ByLocalPort(app, by_port),
        log_config=None,  # keep the structured logging configured in main.py
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT_S,
    )
    return uvicorn.Server(config), sockets


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run the service on ``port`` (and a :class:`ServiceApp`'s internal ports) until
    SIGTERM/SIGINT, then shut down gracefully."""
    server, sockets = listening_server(app, host=host, port=port)
    logger.info("listening", extra={"addresses": [str(s.getsockname()) for s in sockets]})
    server.run(sockets=sockets)


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_service(settings: SettingsT, create_app: Callable[[SettingsT], FastAPI]) -> None:
    """A service's ``main()``: structured logging, then the app from its factory, served."""
    configure_logging(settings.service_name, level=settings.log_level, json_lines=settings.log_json)
    serve(create_app(settings), host=settings.http_host, port=settings.http_port)

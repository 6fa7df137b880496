"""slidestream_platform.service: routes on an internal port answer there and nowhere else, on
real sockets (uvicorn tells each request the local port it arrived on)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from slidestream_platform.service import ServiceApp, listening_server
from tests.support.upload import free_port

STARTUP_TIMEOUT_S = 10.0


def two_port_app(internal_port: int) -> ServiceApp:
    app = ServiceApp()
    app.state.answer = "shared state"

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"port": "public"}

    internal = APIRouter()

    @internal.post("/hooks/tusd")
    async def hook() -> dict[str, str]:
        return {"port": "internal"}

    internal_app = FastAPI(openapi_url=None)
    internal_app.state = app.state
    internal_app.include_router(internal)
    app.internal_apps = {internal_port: internal_app}
    return app


@contextmanager
def serving(app: FastAPI) -> Iterator[int]:
    """The app on a free public port (yielded) and its internal ports, in a thread."""
    server, sockets = listening_server(app, host="127.0.0.1", port=0)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=sockets),))
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield int(sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)


def test_internal_routes_answer_only_on_their_port_and_public_ones_only_on_theirs() -> None:
    internal_port = free_port()
    with serving(two_port_app(internal_port)) as public_port:
        public = f"http://127.0.0.1:{public_port}"
        internal = f"http://127.0.0.1:{internal_port}"

        assert httpx.post(f"{internal}/hooks/tusd").json() == {"port": "internal"}
        assert httpx.post(f"{public}/hooks/tusd").status_code == 404
        assert httpx.get(f"{public}/public").json() == {"port": "public"}
        assert httpx.get(f"{internal}/public").status_code == 404


def test_an_app_without_internal_routes_listens_on_its_port_alone() -> None:
    _server, sockets = listening_server(FastAPI(), host="127.0.0.1", port=0)
    try:
        assert [sock.getsockname()[0] for sock in sockets] == ["127.0.0.1"]
    finally:
        for sock in sockets:
            sock.close()


def test_an_internal_port_already_in_use_fails_at_start() -> None:
    internal_port = free_port()
    with serving(two_port_app(internal_port)), pytest.raises(OSError):
        listening_server(two_port_app(internal_port), host="127.0.0.1", port=0)

"""The catalog service as a real process: Kafka in, SQL state, HTTP out, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from slidestream_contracts.events import SlideStatusV1
from slidestream_contracts.states import SlideState, Step
from slidestream_platform.broker import make_bus
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, stack_env: dict[str, str], tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    if "POSTGRES_URL" not in stack_env:
        pytest.fail("the local stack has no PostgreSQL; `make setup` installs it")
    return stack_env["POSTGRES_URL"]


@pytest.fixture
def catalog(
    stack_env: dict[str, str], database_url: str, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    log_path = tmp_path / "catalog.log"
    env = os.environ.copy()  # noqa: TID251 - building a child process environment
    env.update(
        KAFKA_BOOTSTRAP=stack_env["KAFKA_BOOTSTRAP"],
        KAFKA_CONSUMER_GROUP=f"catalog-test-{uuid4().hex[:8]}",
        DATABASE_URL=database_url,
        HTTP_PORT=str(port),
        DATA_DIR=str(tmp_path),
        LOG_JSON="true",
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "slidestream_catalog.main"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", process, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url) as client:
        while asyncio.get_running_loop().time() < deadline:
            assert process.poll() is None, "catalog exited during start"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("catalog never became ready")


def status(slide_id: object, state: SlideState, step: Step, minute: int) -> SlideStatusV1:
    return SlideStatusV1.model_validate(
        {
            "slide_id": slide_id,
            "tenant": "acme",
            "state": state,
            "step": step,
            "occurred_at": f"2026-11-26T10:{minute:02d}:00+00:00",
        }
    )


async def test_catalog_projects_status_events_and_shuts_down_gracefully(
    catalog: tuple[str, subprocess.Popen[bytes], Path], stack_env: dict[str, str]
) -> None:
    base_url, process, log_path = catalog
    await wait_ready(base_url, process)
    bus = make_bus(
        ServiceSettings(service_name="upload", kafka_bootstrap=stack_env["KAFKA_BOOTSTRAP"]),
        step=Step.UPLOAD,
        tracer_provider=make_tracer_provider("test", otlp_endpoint=None),
    )
    slide_id = uuid4()
    await bus.broker.start()
    try:
        await bus.publisher.publish(status(slide_id, SlideState.UPLOADED, Step.UPLOAD, 0))
        await bus.publisher.publish(status(slide_id, SlideState.DEIDENTIFIED, Step.DEID, 1))
        # A redelivery of the first event must not move the slide backwards.
        await bus.publisher.publish(status(slide_id, SlideState.UPLOADED, Step.UPLOAD, 0))
    finally:
        await bus.broker.stop()

    async with httpx.AsyncClient(base_url=base_url) as client:
        body: dict[str, object] = {}
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
        while asyncio.get_running_loop().time() < deadline:
            response = await client.get(f"/slides/{slide_id}")
            if response.status_code == 200:
                body = response.json()
                if body["state"] == "deidentified":
                    break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let the redelivered event arrive too
        final = (await client.get(f"/slides/{slide_id}")).json()
        missing = await client.get(f"/slides/{uuid4()}")
        metrics = (await client.get("/metrics")).text

    assert body["state"] == "deidentified"
    assert final["state"] == "deidentified"
    assert missing.status_code == 404
    assert "slidestream_ready 1.0" in metrics
    assert "faststream_received_messages_total" in metrics

    process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the captured SIGTERM once its graceful shutdown has finished.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("event") == "service stopped" for line in lines)
    assert all({"timestamp", "level", "service"} <= line.keys() for line in lines)

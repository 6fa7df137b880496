"""The service app's probes: ``/healthz`` fails while a message is handled for longer than the
poll interval plus its margin without a poll (a fake clock), a long handler that keeps its group
membership stays alive, and ``/readyz`` lists every dependency's state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from faststream.kafka import TestKafkaBroker

from slidestream_contracts.events import SlideStatusV1
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.topics import Topic
from slidestream_platform.broker import ServiceBus, make_bus
from slidestream_platform.membership import keep_group_membership
from slidestream_platform.service import service_app
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from tests.support.consumer import FakeConsumer

MAX_POLL_INTERVAL_S = 300.0
MARGIN_S = 60.0
STATUS = SlideStatusV1(
    slide_id="0193a0d6-0000-7000-8000-000000000001",
    tenant="acme",
    state=SlideState.UPLOADED,
    step=Step.UPLOAD,
)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def bus_with(clock: FakeClock) -> ServiceBus:
    settings = ServiceSettings(
        service_name="upload",
        kafka_max_poll_interval_s=MAX_POLL_INTERVAL_S,
        kafka_liveness_margin_s=MARGIN_S,
    )
    provider = make_tracer_provider("test", otlp_endpoint=None)
    return make_bus(settings, step=None, tracer_provider=provider, clock=clock)


@asynccontextmanager
async def handling(
    bus: ServiceBus, body: Callable[[asyncio.Event], Awaitable[None]]
) -> AsyncIterator[httpx.AsyncClient]:
    """The service's HTTP client while one message's handler runs ``body`` (until the test
    leaves the block, which releases it)."""
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(event: SlideStatusV1) -> None:
        started.set()
        await body(release)

    bus.subscribe(Topic.SLIDES_STATUS, handler)
    transport = httpx.ASGITransport(app=service_app(bus))
    async with (
        TestKafkaBroker(bus.broker),
        httpx.AsyncClient(transport=transport, base_url="http://service") as client,
    ):
        delivery = asyncio.create_task(bus.publisher.publish(STATUS))
        await asyncio.wait_for(started.wait(), timeout=5)
        try:
            yield client
        finally:
            release.set()
            await asyncio.wait_for(delivery, timeout=5)


async def wait(release: asyncio.Event) -> None:
    await release.wait()


async def test_a_handler_that_never_polls_fails_liveness_past_the_interval_and_margin() -> None:
    clock = FakeClock()
    bus = bus_with(clock)
    async with handling(bus, wait) as client:
        clock.now_s += MAX_POLL_INTERVAL_S + MARGIN_S - 1
        assert (await client.get("/healthz")).status_code == 200
        clock.now_s += 2
        stalled = await client.get("/healthz")
        assert stalled.status_code == 503
        body: dict[str, Any] = stalled.json()
        assert body["status"] == "stalled"
        assert body["stalled_s"] == {Topic.SLIDES_STATUS.value: MAX_POLL_INTERVAL_S + MARGIN_S + 1}
    # The handler returned: the consumer polls again.
    transport = httpx.ASGITransport(app=service_app(bus))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        assert (await client.get("/healthz")).status_code == 200


class SignallingConsumer(FakeConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.polled = asyncio.Event()

    async def getmany(self, *partitions: Any, **options: Any) -> dict[Any, list[object]]:
        batches = await super().getmany(*partitions, **options)
        self.polled.set()
        return batches


async def test_a_long_handler_that_keeps_its_group_membership_stays_alive() -> None:
    clock = FakeClock()
    consumer = SignallingConsumer()

    async def convert_for_hours(release: asyncio.Event) -> None:
        async with keep_group_membership(consumer, poll_every_s=0.01):
            await release.wait()

    async with handling(bus_with(clock), convert_for_hours) as client:
        for _ in range(3):  # hours pass; the poller keeps polling
            clock.now_s += MAX_POLL_INTERVAL_S + MARGIN_S + 1
            consumer.polled.clear()
            await asyncio.wait_for(consumer.polled.wait(), timeout=5)
            assert (await client.get("/healthz")).status_code == 200


async def test_an_idle_consumer_is_alive_however_long_nothing_arrives() -> None:
    clock = FakeClock()
    bus = bus_with(clock)
    clock.now_s += 10 * (MAX_POLL_INTERVAL_S + MARGIN_S)
    transport = httpx.ASGITransport(app=service_app(bus))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


async def test_readiness_lists_every_dependencys_state() -> None:
    async def database_ready() -> None:
        return None

    async def object_store_ready() -> None:
        raise PermissionError("403 from s3://quarantine")

    bus = bus_with(FakeClock())
    checks = {"database": database_ready, "object_store": object_store_ready}
    transport = httpx.ASGITransport(app=service_app(bus, readiness_checks=checks))
    async with (
        TestKafkaBroker(bus.broker),
        httpx.AsyncClient(transport=transport, base_url="http://service") as client,
    ):
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["ready"] is False
    assert body["dependencies"] == {
        "kafka": "ok",
        "database": "ok",
        "object_store": "PermissionError",
    }
    assert body["failures"] == {"object_store": "PermissionError"}

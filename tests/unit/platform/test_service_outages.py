"""slidestream_platform.service: /readyz reports a dependency down while a delivery waits for it."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import httpx
import pytest

from slidestream_contracts.states import Step
from slidestream_platform.delivery import DeliveryPolicy, RetryPolicy
from slidestream_platform.metrics import ServiceMetrics
from slidestream_platform.service import service_app
from tests.support.delivery import CountingSleep, RecordingSink, consumed, store_unreachable


@dataclass
class AnsweringBroker:
    async def ping(self, **_timeout_s: float) -> bool:
        return True


async def test_readiness_is_down_while_a_message_waits_for_the_store_and_back_after() -> None:
    policy = DeliveryPolicy(
        service="deid",
        step=Step.DEID,
        retry=RetryPolicy(max_attempts=5, backoff_initial_s=0.5, backoff_max_s=60.0),
        metrics=ServiceMetrics(),
        sink=RecordingSink(),  # type: ignore[arg-type]
        sleep=CountingSleep(),
    )
    bus = SimpleNamespace(
        broker=AnsweringBroker(),
        settings=SimpleNamespace(service_name="deid"),
        metrics=policy.metrics,
        delivery=policy,
    )

    async def object_store_ready() -> None:
        return None  # the probe's HEAD answers (a full store does), the work's GET does not

    app = service_app(bus, readiness_checks={"object_store": object_store_ready})  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    message, error = consumed(), store_unreachable()
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        assert (await client.get("/readyz")).status_code == 200
        with pytest.raises(type(error)):
            await policy.handle_failure(message, error)
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["failures"] == {"object_store": "RetryableError (a delivery waits)"}

        await policy.succeeded(message)  # the store is back: the message got through
        assert (await client.get("/readyz")).status_code == 200

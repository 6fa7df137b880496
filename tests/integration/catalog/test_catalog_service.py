"""The catalog service as a real process: Kafka in, SQL state, HTTP out (for the slide's own
tenant only), graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
from uuid import uuid4

import httpx
import pytest

from slidestream_contracts.states import SlideState, Step
from tests.support.catalog import (
    STACK_ENV_FILE,
    STACK_WAIT_S,
    CatalogProcess,
    SlideEvents,
    create_tenant,
    publish,
)

pytestmark = pytest.mark.integration


async def test_catalog_projects_status_events_and_shuts_down_gracefully(
    catalog: CatalogProcess,
    stack_env: dict[str, str],
    tenant_token: tuple[str, str],
) -> None:
    tenant, token = tenant_token
    slide = SlideEvents(tenant)
    await publish(
        stack_env,
        [
            slide.status(0, SlideState.UPLOADED, Step.UPLOAD),
            slide.status(1, SlideState.DEIDENTIFIED, Step.DEID),
            # A redelivery of the first event must not move the slide backwards.
            slide.status(0, SlideState.UPLOADED, Step.UPLOAD),
        ],
    )
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=catalog.base_url, headers=auth) as client:
        body: dict[str, object] = {}
        deadline = asyncio.get_running_loop().time() + STACK_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            response = await client.get(f"/slides/{slide.slide_id}")
            if response.status_code == 200:
                body = response.json()
                if body["state"] == "deidentified":
                    break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let the redelivered event arrive too
        final = (await client.get(f"/slides/{slide.slide_id}")).json()
        missing = await client.get(f"/slides/{uuid4()}")
        metrics = (await client.get("/metrics")).text

    assert body["state"] == "deidentified"
    assert final == {
        "slide_id": str(slide.slide_id),
        "tenant": tenant,
        "state": "deidentified",
        "step": "deid",
        "reason": None,
        "detail": "",
        "updated_at": body["updated_at"],
    }
    assert missing.status_code == 404
    assert "slidestream_ready 1.0" in metrics
    assert "faststream_received_messages_total" in metrics

    assert catalog.process is not None
    catalog.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the captured SIGTERM once its graceful shutdown has finished.
    assert catalog.process.wait(timeout=30) in (0, -signal.SIGTERM)
    log = catalog.log_path.read_text().splitlines()
    lines = [json.loads(line) for line in log if line.startswith("{")]
    assert any(line.get("event") == "service stopped" for line in lines)
    assert all({"timestamp", "level", "service"} <= line.keys() for line in lines)


async def test_a_slide_is_read_only_with_its_own_tenants_token(
    catalog: CatalogProcess,
    stack_env: dict[str, str],
    tenant_token: tuple[str, str],
) -> None:
    tenant, token = tenant_token
    _, other_token = create_tenant(STACK_ENV_FILE)
    slide = SlideEvents(tenant)
    await publish(stack_env, [slide.status(0, SlideState.UPLOADED, Step.UPLOAD)])
    path = f"/slides/{slide.slide_id}"
    async with httpx.AsyncClient(base_url=catalog.base_url) as client:
        owner = {"Authorization": f"Bearer {token}"}
        deadline = asyncio.get_running_loop().time() + STACK_WAIT_S
        while (await client.get(path, headers=owner)).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "the slide never appeared"
            await asyncio.sleep(0.2)
        anonymous = await client.get(path)
        bad_token = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        other = await client.get(path, headers={"Authorization": f"Bearer {other_token}"})

    assert anonymous.status_code == 401
    assert bad_token.status_code == 401
    # Another tenant's slide is answered like a missing one.
    assert other.status_code == 404

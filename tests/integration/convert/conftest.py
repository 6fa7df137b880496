"""Fixtures of the convert tests: the convert service in this process (own consumer group), on
the shared stack's Kafka, MinIO and PostgreSQL, and de-identified slides to feed it.

Two instances run in one consumer group, as two replicas would: if a slow conversion cost its
member the group, the other instance would be handed the partition and convert the slide again.

The stack's own convert service is stopped for the module (it would take the test's events) and
started again afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_convert.main import create_app
from slidestream_convert.settings import ConvertSettings
from slidestream_devstack import stack
from slidestream_platform.broker import make_bus
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from tests.support.convert import (
    MAX_POLL_INTERVAL_S,
    OUTPUT_TOPICS,
    Deployment,
    LogCounter,
    SlowConverter,
)
from tests.support.stack import Collector, commit_group_at_end, object_store


@pytest.fixture(scope="module")
async def deployment(stack_env: dict[str, str]) -> AsyncIterator[Deployment]:
    bootstrap = stack_env["KAFKA_BOOTSTRAP"]
    await asyncio.to_thread(stack.down, ["convert"])
    group = f"convert-test-{uuid4().hex[:8]}"
    settings = ConvertSettings(
        kafka_bootstrap=bootstrap,
        kafka_consumer_group=group,
        kafka_max_poll_interval_s=MAX_POLL_INTERVAL_S,
        kafka_max_attempts=2,
        kafka_retry_backoff_initial_s=0.2,
        s3_endpoint=stack_env["S3_ENDPOINT"],
        s3_access_key=stack_env["S3_ACCESS_KEY"],
        s3_secret_key=stack_env["S3_SECRET_KEY"],  # type: ignore[arg-type]
        database_url=stack_env["POSTGRES_URL"],
        membership_poll_s=1.0,
        log_json=False,
    )
    converter = SlowConverter()  # shared: it counts conversions across both replicas
    app = create_app(settings, converter=converter)
    replica = create_app(settings, converter=converter)
    collector = Collector(bootstrap, OUTPUT_TOPICS)
    bus = make_bus(
        ServiceSettings(service_name="deid", kafka_bootstrap=bootstrap),
        step=Step.DEID,
        tracer_provider=make_tracer_provider("convert-test", otlp_endpoint=None),
    )
    logs = LogCounter()
    logging.getLogger("slidestream_convert").addHandler(logs)
    logging.getLogger("slidestream_convert").setLevel(logging.INFO)
    await commit_group_at_end(bootstrap, group, Topic.SLIDES_DEIDENTIFIED.value)
    await collector.start()
    await bus.broker.start()
    try:
        async with app.router.lifespan_context(app), replica.router.lifespan_context(replica):
            yield Deployment(
                app=app,
                converter=converter,
                collector=collector,
                bus=bus,
                store=object_store(stack_env),
                logs=logs,
                tenant=f"t-convert-{uuid4().hex[:8]}",
                max_poll_interval_s=MAX_POLL_INTERVAL_S,
            )
    finally:
        logging.getLogger("slidestream_convert").removeHandler(logs)
        await bus.broker.stop()
        await collector.stop()
        await asyncio.to_thread(stack.up, ["convert"])

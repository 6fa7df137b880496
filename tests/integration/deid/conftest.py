"""Fixtures of the deid tests: a private deid process and the means to talk to it.

The stack's own deid service (consumer group ``deid``) is stopped for the duration of the module,
because it would process the test's events too; it is started again afterwards, and then answers
those events from the shared database's decisions (same key file, same PostgreSQL schema).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from slidestream_contracts.states import Step
from slidestream_devstack import stack
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.secret_files import deid_pseudonym_key_file, deid_vault_key_file
from slidestream_platform.broker import make_bus
from slidestream_platform.db import DatabaseSettings, make_engine
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from tests.support.deid import OUTPUT_TOPICS, RETENTION_S, DeidProcess, Deployment
from tests.support.stack import Collector, commit_group_at_end, object_store


@pytest.fixture(scope="module")
async def deployment(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    bootstrap = stack_env["KAFKA_BOOTSTRAP"]
    await asyncio.to_thread(stack.down, ["deid"])
    local = StackPaths(find_repo_root(None)).local
    key_file = deid_pseudonym_key_file(local)
    vault_key_file = deid_vault_key_file(local)  # the stack's: the vault rows are shared
    process = DeidProcess(
        stack_env,
        tmp_path_factory.mktemp("deid"),
        key_file,
        vault_key_file,
        retention_s=RETENTION_S,
    )
    collector = Collector(bootstrap, OUTPUT_TOPICS)
    bus = make_bus(
        ServiceSettings(service_name="upload", kafka_bootstrap=bootstrap),
        step=Step.UPLOAD,
        tracer_provider=make_tracer_provider("deid-test", otlp_endpoint=None),
    )
    engine = make_engine(DatabaseSettings(url=stack_env["POSTGRES_URL"]), "deid")
    try:
        await commit_group_at_end(bootstrap, process.group, "slides.uploaded.v1")
        await collector.start()
        await asyncio.to_thread(process.start)
        await bus.broker.start()
        yield Deployment(
            process=process,
            collector=collector,
            bus=bus,
            store=object_store(stack_env),
            engine=engine,
            tenant=f"t-deid-{uuid4().hex[:8]}",
            key_file=key_file,
            vault_key_file=vault_key_file,
            partitions=int(stack_env.get("KAFKA_TOPIC_PARTITIONS", "12")),
        )
    finally:
        await bus.broker.stop()
        await asyncio.to_thread(process.stop)
        await collector.stop()
        engine.dispose()
        await asyncio.to_thread(stack.up, ["deid"])

"""The devstack as a whole: every part healthy, a second `up` fast and idempotent, topics made."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from slidestream_contracts.topics import all_topics
from slidestream_devstack import stack
from slidestream_devstack.cli import app
from slidestream_devstack.kafka import topic_partition_counts

pytestmark = pytest.mark.integration

WARM_UP_LIMIT_S = 15.0
"""A second `up` only probes running servers; anything near a cold start means it restarted them."""

EXPECTED_KEYS = {
    "KAFKA_BOOTSTRAP",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_REGION",
    "S3_SECONDARY_ENDPOINT",
    "S3_SECONDARY_ACCESS_KEY",
    "S3_SECONDARY_SECRET_KEY",
    "DATABASE_URL",
    "TRITON_GRPC",
    "TRITON_HTTP",
    "TRITON_MODEL_REPOSITORY",
    "MODELS_BUCKET",
    "TUS_URL",
    "INFERENCE_API",
    "MODELS_TOKEN_FILE",
}


def test_env_file_lists_every_endpoint(stack_env: dict[str, str]) -> None:
    assert stack_env.keys() >= EXPECTED_KEYS
    assert stack.read_stack_env() == stack_env


def test_status_reports_every_part_healthy(stack_env: dict[str, str]) -> None:
    statuses = {part.name: part for part in stack.status()}
    assert statuses.keys() == set(stack.PART_NAMES)
    for part in statuses.values():
        # Postgres alone may be absent (no Debian package): then the stack falls back to SQLite.
        if part.state == "unavailable":
            assert part.name == "postgres", part
            assert stack_env["DATABASE_URL"].startswith("sqlite:///")
            continue
        assert part.state == "healthy", part
        assert part.pid is not None


def test_status_command_prints_a_table(stack_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    for name in stack.PART_NAMES:
        assert name in result.output
    assert "healthy" in result.output


def test_second_up_is_fast_and_keeps_the_processes(stack_env: dict[str, str]) -> None:
    pids_before = {part.name: part.pid for part in stack.status()}

    started = time.monotonic()
    env = stack.up()
    elapsed_s = time.monotonic() - started

    assert elapsed_s < WARM_UP_LIMIT_S
    assert env == stack_env
    assert {part.name: part.pid for part in stack.status()} == pids_before


async def test_kafka_topics_exist_with_configured_partitions(stack_env: dict[str, str]) -> None:
    partitions = int(stack_env["KAFKA_TOPIC_PARTITIONS"])
    existing = await topic_partition_counts(stack_env["KAFKA_BOOTSTRAP"])
    for spec in all_topics(partitions):
        assert existing.get(spec.name) == spec.partitions, spec

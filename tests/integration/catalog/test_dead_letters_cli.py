"""``slidestream dlq`` on the stack's Kafka: a dead letter is listed with its reason, shown with
its original, replayed to its topic once (a second replay finds the first), and purged.

The dead letter is the test's own, on ``dlq.search.v1`` (no running service writes there), and
its original topic is a scratch topic, so that the replay reaches no service."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from slidestream_catalog.dead_letters import REPLAY_HEADER
from slidestream_catalog.dead_letters_cli import app
from slidestream_catalog.main import dead_letter_depth_job
from slidestream_catalog.settings import CatalogSettings
from slidestream_contracts.events import DeadLetterRecordV1
from slidestream_contracts.topics import dead_letter_topic
from tests.support.catalog import STACK_ENV_FILE

pytestmark = pytest.mark.integration

runner = CliRunner()
TRACEPARENT = "00-" + "12" * 16 + "-" + "34" * 8 + "-01"
ORIGINAL = b'{"slide": "an event its consumer could not take"}'


async def _setup(bootstrap: str, scratch: str, record: DeadLetterRecordV1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(scratch, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            dead_letter_topic("search"), record.model_dump_json().encode(), key=b"k"
        )
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        found = []
        while await consumer.position(partition) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend((r.value, dict(r.headers or ())) for r in records)
        return found
    finally:
        await consumer.stop()


@pytest.fixture
def dead_letter(stack_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A fresh dead letter's slide id, and the scratch topic its original came from."""
    slide_id = uuid.uuid4()
    scratch = f"dlq-replay-test-{uuid.uuid4().hex[:8]}"
    record = DeadLetterRecordV1(
        service="search",
        original_topic=scratch,
        original_partition=0,
        original_offset=0,
        original_key=str(slide_id),
        original_headers={"traceparent": TRACEPARENT},
        payload_base64=base64.b64encode(ORIGINAL).decode(),
        error_class="IndexUnavailableError",
        error_reason="search-index-down",
        error_message="the index refused the connection",
        attempts=5,
        slide_id=slide_id,
    )
    asyncio.run(_setup(stack_env["KAFKA_BOOTSTRAP"], scratch, record))
    yield str(slide_id), scratch


def _cli(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, [*args, "--env-file", str(STACK_ENV_FILE)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_a_dead_letter_is_listed_shown_replayed_once_and_purged(
    stack_env: dict[str, str], dead_letter: tuple[str, str]
) -> None:
    slide_id, scratch = dead_letter
    [listed] = _cli("list", "--service", "search", "--slide", slide_id, "--json")
    assert (listed["reason"], listed["attempts"]) == ("search-index-down", 5)
    assert listed["message"] == "the index refused the connection"
    letter_id = str(listed["id"])

    shown = runner.invoke(app, ["show", letter_id, "--env-file", str(STACK_ENV_FILE)])
    assert json.loads(shown.stdout)["original"] == json.loads(ORIGINAL)

    [first] = _cli("replay", letter_id, "--json")
    assert (first["outcome"], first["at"]) == ("replayed", f"{scratch}/0/0")
    [again] = _cli("replay", letter_id, "--json")
    assert (again["outcome"], again["at"]) == ("already-replayed", f"{scratch}/0/0")
    [(value, headers)] = asyncio.run(_read_all(stack_env["KAFKA_BOOTSTRAP"], scratch))
    assert value == ORIGINAL
    assert headers["traceparent"] == TRACEPARENT.encode()  # the replay joins the slide's trace
    assert headers[REPLAY_HEADER] == letter_id.encode()

    registry = CollectorRegistry()
    job = dead_letter_depth_job(CatalogSettings(_env_file=STACK_ENV_FILE), registry)
    asyncio.run(job.run())
    depth = registry.get_sample_value("slidestream_dead_letter_depth", {"service": "search"})
    assert depth is not None and depth >= 1

    [purged] = _cli("purge", "--service", "search", "--yes", "--json")
    assert int(str(purged["deleted"])) >= 1
    assert _cli("list", "--service", "search", "--json") == []
    asyncio.run(job.run())
    assert registry.get_sample_value("slidestream_dead_letter_depth", {"service": "search"}) == 0


def test_purge_asks_for_yes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["purge", "--service", "search", "--env-file", str(STACK_ENV_FILE)])
    assert result.exit_code == 2
    assert "--yes" in result.stderr

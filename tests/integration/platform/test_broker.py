"""The broker factory and the delivery middleware against a real Kafka broker.

Covers docs/architecture.md, "Delivery: effectively once": envelope and trace context arrive; a
poison message lands in the dead-letter topic with its headers; a failing handler's offset is not
committed until the message is retried to success or durably dead-lettered; a message that kills
its consumer process is dead-lettered by the next one instead of killing it too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream import Context
from faststream.kafka.message import KafkaMessage
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from slidestream_contracts.envelope import Envelope
from slidestream_contracts.events import DeadLetterRecordV1, ObjectRef, SlideFormat, SlideUploadedV1
from slidestream_contracts.quarantine import ORIGINAL_ARTEFACT, slide_object_key
from slidestream_contracts.reasons import REASONS
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.topics import Topic, dead_letter_topic
from slidestream_platform.broker import ServiceBus, make_bus
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider

pytestmark = pytest.mark.integration

WAIT_S = 60.0
REPO_ROOT = Path(__file__).resolve().parents[3]
CRASH_WAIT_S = 90.0
"""A restarted consumer joins its group only once the killed member's session has expired."""


@pytest.fixture(scope="module")
def kafka_bootstrap(stack_env: dict[str, str]) -> str:
    return stack_env["KAFKA_BOOTSTRAP"]


def uploaded_event(tenant: str = "acme") -> SlideUploadedV1:
    slide_id = uuid4()
    return SlideUploadedV1(
        slide_id=slide_id,
        tenant=tenant,
        original=ObjectRef(
            bucket="quarantine",
            key=slide_object_key(tenant, slide_id, ORIGINAL_ARTEFACT),
            sha256="0" * 64,
            size_bytes=1,
        ),
        container_format=SlideFormat.TIFF,
        upload_id="u-1",
    )


def settings_for(
    bootstrap: str, *, service: str = "deid", max_attempts: int = 3
) -> ServiceSettings:
    return ServiceSettings(
        service_name=service,
        kafka_bootstrap=bootstrap,
        kafka_consumer_group=f"test-{uuid4().hex[:12]}",
        kafka_max_attempts=max_attempts,
        kafka_retry_backoff_initial_s=0.05,
        kafka_retry_backoff_max_s=0.2,
    )


@asynccontextmanager
async def running(bus: ServiceBus) -> AsyncIterator[ServiceBus]:
    await bus.broker.start()
    try:
        yield bus
    finally:
        await bus.broker.stop()


async def wait_until(predicate: Any, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def read_records(
    bootstrap: str, topic: str, *, match: Any, expected: int = 1, timeout_s: float = WAIT_S
) -> list[Any]:
    """Records of ``topic`` (from the start) satisfying ``match``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(r for r in records if match(r))
    finally:
        await consumer.stop()
    return found


async def committed_offset(bootstrap: str, group: str, partition: TopicPartition) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(partition)
    return None if meta is None else int(meta.offset)


async def test_envelope_and_trace_context_cross_a_kafka_hop(kafka_bootstrap: str) -> None:
    exporter = InMemorySpanExporter()
    provider = make_tracer_provider(
        "test", otlp_endpoint=None, extra_processors=(SimpleSpanProcessor(exporter),)
    )
    consumer_bus = make_bus(settings_for(kafka_bootstrap), step=Step.DEID, tracer_provider=provider)
    producer_bus = make_bus(
        settings_for(kafka_bootstrap, service="upload"), step=Step.UPLOAD, tracer_provider=provider
    )
    event = uploaded_event()
    seen: list[tuple[SlideUploadedV1, str, dict[str, str]]] = []

    async def on_uploaded(
        body: SlideUploadedV1,
        message: KafkaMessage = Context("message"),  # noqa: B008 - FastStream injection
    ) -> None:
        if body.slide_id == event.slide_id:
            trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
            seen.append((body, trace_id, dict(message.headers)))

    consumer_bus.subscribe(Topic.SLIDES_UPLOADED, on_uploaded)
    tracer = provider.get_tracer("test")
    async with running(consumer_bus), running(producer_bus):
        with tracer.start_as_current_span("partner upload") as span:
            publish_trace = format(span.get_span_context().trace_id, "032x")
            await producer_bus.publisher.publish(event)
        await wait_until(lambda: bool(seen))

    body, consume_trace, headers = seen[0]
    assert body == event
    assert consume_trace == publish_trace
    envelope = Envelope.from_headers(headers)
    assert envelope.type == SlideUploadedV1.CE_TYPE
    assert envelope.subject == str(event.slide_id)
    assert envelope.source == "/slidestream/upload"
    assert headers["traceparent"].split("-")[1] == publish_trace


async def test_poison_message_is_dead_lettered_with_its_headers(kafka_bootstrap: str) -> None:
    provider = make_tracer_provider("test", otlp_endpoint=None)
    settings = settings_for(kafka_bootstrap)
    bus = make_bus(settings, step=Step.DEID, tracer_provider=provider)
    handled: list[UUID] = []

    async def on_uploaded(body: SlideUploadedV1) -> None:
        handled.append(body.slide_id)

    bus.subscribe(Topic.SLIDES_UPLOADED, on_uploaded)
    slide_id = uuid4()
    good = uploaded_event()
    # An unknown field makes the event malformed (extra="forbid"): it can never be processed.
    poison = {**json.loads(good.model_dump_json()), "slide_id": str(slide_id), "patient_name": "x"}
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"poison-1"),
        ("ce_type", SlideUploadedV1.CE_TYPE.encode()),
        ("ce_source", b"/test"),
        ("ce_subject", str(slide_id).encode()),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with running(bus):
            meta = await producer.send_and_wait(
                Topic.SLIDES_UPLOADED.value,
                json.dumps(poison).encode(),
                key=str(slide_id).encode(),
                headers=headers,
            )
            # A good message after the poison one still flows: the partition is not blocked.
            await bus.publisher.publish(uploaded_event())
            records = await read_records(
                kafka_bootstrap,
                dead_letter_topic("deid"),
                match=lambda r: r.key == str(slide_id).encode(),
            )
            statuses = await read_records(
                kafka_bootstrap,
                Topic.SLIDES_STATUS.value,
                match=lambda r: r.key == str(slide_id).encode(),
            )
            tp = TopicPartition(meta.topic, meta.partition)
            # The offset is committed right after the dead letter and the status are published;
            # give the consumer a moment to do so.
            committed: int | None = None
            deadline = asyncio.get_running_loop().time() + WAIT_S
            while asyncio.get_running_loop().time() < deadline:
                committed = await committed_offset(kafka_bootstrap, settings.consumer_group, tp)
                if committed is not None and committed > meta.offset:
                    break
                await asyncio.sleep(0.2)
    finally:
        await producer.stop()

    assert slide_id not in handled
    assert len(records) == 1
    record = DeadLetterRecordV1.model_validate_json(records[0].value)
    assert record.original_topic == Topic.SLIDES_UPLOADED.value
    assert (record.original_partition, record.original_offset) == (meta.partition, meta.offset)
    assert record.error_reason == "invalid-event"
    assert "ValidationError" in record.error_class
    assert record.original_headers["ce_id"] == "poison-1"
    assert record.attempts == 1
    assert json.loads(base64.b64decode(record.payload_base64)) == poison
    dlq_headers = {k: v.decode() for k, v in records[0].headers}
    assert dlq_headers["ce_type"] == DeadLetterRecordV1.CE_TYPE
    assert "traceparent" in dlq_headers
    assert len(record.trace_id) == 32
    status = json.loads(statuses[0].value)
    assert status["state"] == SlideState.FAILED_DEID.value
    # The status speaks in words; the class name stays in the dead letter.
    assert status["reason"] == "invalid-event"
    assert status["detail"] == REASONS["invalid-event"].summary
    assert "Error" not in status["detail"] and "dlq." not in status["detail"]
    assert committed is not None and committed > meta.offset


async def test_failing_handler_offset_is_not_committed_until_retries_end(
    kafka_bootstrap: str,
) -> None:
    provider = make_tracer_provider("test", otlp_endpoint=None)
    settings = settings_for(kafka_bootstrap, max_attempts=3)
    bus = make_bus(settings, step=Step.DEID, tracer_provider=provider)
    event = uploaded_event()
    attempts: list[int] = []
    release = asyncio.Event()
    offsets_seen_during_failure: list[int | None] = []

    async def on_uploaded(body: SlideUploadedV1) -> None:
        if body.slide_id != event.slide_id:
            return
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            await release.wait()
            raise RuntimeError("bug: unexpected state")  # not a SlidestreamError: retried

    bus.subscribe(Topic.SLIDES_UPLOADED, on_uploaded)
    async with running(bus):
        await bus.publisher.publish(event)
        await wait_until(lambda: len(attempts) == 1)
        meta_partition = await _partition_of(kafka_bootstrap, event)
        tp = TopicPartition(Topic.SLIDES_UPLOADED.value, meta_partition)
        offsets_seen_during_failure.append(
            await committed_offset(kafka_bootstrap, settings.consumer_group, tp)
        )
        release.set()
        await wait_until(lambda: len(attempts) == 3)
        await asyncio.sleep(1.0)
        after = await committed_offset(kafka_bootstrap, settings.consumer_group, tp)
    event_offset = await _offset_of(kafka_bootstrap, event)
    before = offsets_seen_during_failure[0]
    # While the handler failed, the group had not committed past the message...
    assert before is None or before <= event_offset
    # ...the third delivery succeeded, and only then was the offset committed past it.
    assert attempts == [1, 2, 3]
    assert after is not None and after > event_offset


async def test_crash_during_failure_redelivers_to_the_next_consumer(kafka_bootstrap: str) -> None:
    provider = make_tracer_provider("test", otlp_endpoint=None)
    settings = settings_for(kafka_bootstrap, max_attempts=100)
    event = uploaded_event()
    first_bus = make_bus(settings, step=Step.DEID, tracer_provider=provider)
    failures: list[int] = []

    async def always_failing(body: SlideUploadedV1) -> None:
        if body.slide_id == event.slide_id:
            failures.append(1)
            raise ConnectionError("object store unreachable")

    first_bus.subscribe(Topic.SLIDES_UPLOADED, always_failing)
    async with running(first_bus):
        await first_bus.publisher.publish(event)
        await wait_until(lambda: len(failures) >= 2)
    # The first consumer "crashed" (stopped) while still failing. A new consumer of the same group
    # gets the message again: its offset was never committed.
    second_bus = make_bus(settings, step=Step.DEID, tracer_provider=provider)
    received: list[UUID] = []

    async def healthy(body: SlideUploadedV1) -> None:
        received.append(body.slide_id)

    second_bus.subscribe(Topic.SLIDES_UPLOADED, healthy)
    async with running(second_bus):
        await wait_until(lambda: event.slide_id in received)
    assert received.count(event.slide_id) == 1


CRASH_LOOP_CLASS = "slidestream_platform.errors.CrashLoopError"


async def test_a_message_that_kills_its_consumer_is_dead_lettered_by_the_next_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    max_attempts = 2
    group = f"test-{uuid4().hex[:12]}"
    event = uploaded_event()
    provider = make_tracer_provider("test", otlp_endpoint=None)
    producer = make_bus(settings_for(kafka_bootstrap), step=Step.DEID, tracer_provider=provider)
    async with running(producer):
        await producer.publisher.publish(event)
    argv = [
        *(sys.executable, "-m", "tests.support.crashing_consumer", kafka_bootstrap, group),
        *(str(tmp_path / "deid.db"), str(event.slide_id), str(max_attempts)),
    ]

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / "consumer.log").open("ab")
        return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)

    for _run in range(max_attempts):  # each process is killed by the message
        process = start()
        returncode = await asyncio.to_thread(process.wait, CRASH_WAIT_S)
        assert returncode == -signal.SIGKILL, (tmp_path / "consumer.log").read_text()
    survivor = start()
    try:
        # The stack's own deid consumes the event too (its own group) and dead-letters it on the
        # same topic, finding no object behind it: this consumer's record is the crash-loop one.
        [dead] = await read_records(
            kafka_bootstrap,
            dead_letter_topic("deid"),
            match=lambda r: (
                r.key == str(event.slide_id).encode()
                and DeadLetterRecordV1.model_validate_json(r.value).error_class == CRASH_LOOP_CLASS
            ),
            timeout_s=CRASH_WAIT_S,
        )
        assert survivor.poll() is None  # it did not run the handler again
    finally:
        survivor.terminate()
        await asyncio.to_thread(survivor.wait, 30)
    record = DeadLetterRecordV1.model_validate_json(dead.value)
    assert (record.error_reason, record.attempts) == ("crash-loop", max_attempts)
    assert record.error_class == CRASH_LOOP_CLASS


async def _offset_of(bootstrap: str, event: SlideUploadedV1) -> int:
    records = await read_records(
        bootstrap,
        Topic.SLIDES_UPLOADED.value,
        match=lambda r: r.key == str(event.slide_id).encode(),
    )
    return int(records[0].offset)


async def _partition_of(bootstrap: str, event: SlideUploadedV1) -> int:
    records = await read_records(
        bootstrap,
        Topic.SLIDES_UPLOADED.value,
        match=lambda r: r.key == str(event.slide_id).encode(),
    )
    return int(records[0].partition)

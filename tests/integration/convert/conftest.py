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
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from fastapi import FastAPI

from slidestream_contracts.events import DeidAuditSummary, SlideDeidentifiedV1
from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic
from slidestream_convert.adapters.converter import Progress, WsiConverter
from slidestream_convert.main import create_app
from slidestream_convert.settings import ConvertSettings
from slidestream_devstack import stack
from slidestream_platform.broker import ServiceBus, make_bus
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.settings import ServiceSettings
from slidestream_platform.telemetry import make_tracer_provider
from slidestream_wsi.convert import ConversionOptions, ConversionResult, DicomIdentity
from tests.support.stack import Collector, commit_group_at_end, object_store

OUTPUT_TOPICS = (
    Topic.SLIDES_CONVERTED.value,
    Topic.SLIDES_STATUS.value,
    "dlq.convert.v1",
)


@dataclass
class SlowConverter(WsiConverter):
    """The real converter, plus a delay for the slides named in ``slow`` (a conversion longer
    than the consumer's max poll interval, without a gigabyte slide)."""

    delay_s: float = 0.0
    slow: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def convert(
        self,
        sources: Sequence[Path],
        out_dir: Path,
        identity: DicomIdentity,
        options: ConversionOptions,
        progress: Progress | None = None,
    ) -> ConversionResult:
        self.calls.append(identity.slide_id)
        if identity.slide_id in self.slow:
            time.sleep(self.delay_s)
        return super().convert(sources, out_dir, identity, options, progress)


@dataclass(eq=False)  # handlers live in sets: identity hashing
class LogCounter(logging.Handler):
    messages: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.getMessage(), str(getattr(record, "slide_id", ""))))

    def count(self, message: str, slide_id: UUID) -> int:
        return sum(1 for m, s in self.messages if m == message and s == str(slide_id))


@dataclass
class Deployment:
    app: FastAPI
    converter: SlowConverter
    collector: Collector
    bus: ServiceBus
    store: MinioObjectStore
    logs: LogCounter
    tenant: str
    max_poll_interval_s: float

    async def publish(self, event: SlideDeidentifiedV1) -> None:
        await self.bus.publisher.publish(event)


MAX_POLL_INTERVAL_S = 6.0
"""Short, so that a test conversion can outlast it (aiokafka leaves the group after it)."""


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


def deidentified_event(
    store: MinioObjectStore, tenant: str, files: Sequence[Path], fmt: str = "aperio-svs"
) -> SlideDeidentifiedV1:
    slide_id = uuid4()
    refs = tuple(
        store.put_file("deidentified", f"{tenant}/{slide_id}/{path.name}", path).to_event_ref()
        for path in files
    )
    return SlideDeidentifiedV1(
        slide_id=slide_id,
        tenant=tenant,
        artefacts=refs,
        format=fmt,
        width_px=1,
        height_px=1,
        level_count=1,
        pseudonyms={"case": "PSEUDO-CASE", "specimen": "PSEUDO-SPEC"},
        audit=DeidAuditSummary(software_version="test", key_version=1),
    )


SlideMaker = Callable[[Path], Path]

"""Support for the convert tests (the QC tests feed their slides the same way): the convert
service's deployment under test, its slow converter and log counter, and de-identified slides
published as deid would."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

from fastapi import FastAPI

from slidestream_contracts.events import DeidAuditSummary, SlideDeidentifiedV1
from slidestream_contracts.topics import Topic
from slidestream_convert.adapters.converter import Progress, WsiConverter
from slidestream_platform.broker import ServiceBus
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_wsi.convert import ConversionOptions, ConversionResult, DicomIdentity
from tests.support.stack import Collector

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

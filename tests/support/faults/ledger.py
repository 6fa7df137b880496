"""Everything the suite's Kafka holds, read from the start of every topic, seen per slide.

The invariants are judged on the log itself, not on what a service says about it: a slide's
terminal state is the decision event that ends its path (a QC verdict, a rejection, a dead
letter); a decision is published exactly once when its topic holds one record for the slide.
Status events are excluded from the count: they are idempotent by design and sent again when a
decision is re-announced (``slidestream_platform.decisions``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from slidestream_contracts.topics import Topic, all_topics, dead_letter_topic
from slidestream_devstack.asyncio_bridge import run_sync

STEPS = ("upload", "deid", "convert", "qc")
"""The services of the suite's pipeline, in order."""
DECISION_TOPICS: tuple[str, ...] = (
    Topic.SLIDES_UPLOADED.value,
    Topic.SLIDES_REJECTED.value,
    Topic.SLIDES_DEIDENTIFIED.value,
    Topic.SLIDES_CONVERTED.value,
    Topic.SLIDES_QC.value,
    *(dead_letter_topic(step) for step in STEPS),
)
"""What a step decides about a slide, once: its output event, a rejection or a dead letter."""
CONSUMED: dict[str, str] = {
    "deid": Topic.SLIDES_UPLOADED.value,
    "convert": Topic.SLIDES_DEIDENTIFIED.value,
    "qc": Topic.SLIDES_CONVERTED.value,
}
"""The slide topic each consuming step's group commits offsets on."""
DECIDED_BY: dict[str, tuple[str, ...]] = {
    "upload": (Topic.SLIDES_UPLOADED.value, Topic.SLIDES_REJECTED.value, "dlq.upload.v1"),
    "deid": (Topic.SLIDES_DEIDENTIFIED.value, Topic.SLIDES_REJECTED.value, "dlq.deid.v1"),
    "convert": (Topic.SLIDES_CONVERTED.value, "dlq.convert.v1"),
    "qc": (Topic.SLIDES_QC.value, "dlq.qc.v1"),
}
"""Where each step's decision about a consumed slide lands."""
READ_POLL_MS = 500
INJECTED_HEADER = "x-fault-suite"
"""Marks the records the suite publishes itself (poison): they are no decision of the pipeline."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp_s: float
    """When the leader appended it (the suite's brokers use LogAppendTime)."""
    value: bytes
    injected: bool = False
    """Published by the suite itself (a poison record), not by the pipeline."""

    def json(self) -> dict[str, Any]:
        """The value as a JSON object; ``{}`` for anything else (a poison record)."""
        try:
            parsed = json.loads(self.value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


def is_injected(topic: str, headers: Sequence[tuple[str, bytes]] | None) -> bool:
    # A dead letter keeps its original's headers (the suite's mark included): it is the
    # pipeline's record all the same.
    marked = any(name == INJECTED_HEADER for name, _ in headers or ())
    return marked and not topic.startswith("dlq.")


def _topics() -> list[str]:
    return [spec.name for spec in all_topics()]


async def _partitions(bootstrap: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(_topics())
    finally:
        await admin.close()
    return [
        TopicPartition(str(topic["topic"]), int(partition["partition"]))
        for topic in described
        for partition in topic["partitions"]
    ]


async def _read_all(bootstrap: str) -> list[LogRecord]:
    partitions = await _partitions(bootstrap)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[LogRecord] = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=READ_POLL_MS)
            for tp, batch in batches.items():
                records.extend(
                    LogRecord(
                        tp.topic,
                        tp.partition,
                        r.offset,
                        r.key.decode() if r.key else None,
                        r.timestamp / 1000,
                        r.value or b"",
                        is_injected(tp.topic, r.headers),
                    )
                    for r in batch
                )
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


@dataclass
class Ledger:
    """One snapshot of every topic (and of the steps' committed offsets)."""

    records: list[LogRecord]
    committed: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)

    @classmethod
    def read(cls, bootstrap: str, *, with_offsets: bool = False) -> Ledger:
        ledger = cls(run_sync(_read_all(bootstrap)))
        if with_offsets:
            ledger.committed = {step: run_sync(_committed(bootstrap, step)) for step in CONSUMED}
        return ledger

    def of(self, slide_id: str, topics: Iterable[str] | None = None) -> Iterator[LogRecord]:
        """The pipeline's records about ``slide_id`` (on ``topics``), not the suite's own."""
        wanted = set(topics) if topics is not None else None
        return (
            r
            for r in self.records
            if r.key == slide_id and not r.injected and (wanted is None or r.topic in wanted)
        )

    def terminals(self, slide_id: str) -> list[str]:
        """Every terminal state the log gives the slide (exactly one when all is well):
        ``qc:<verdict>``, ``rejected:<step>``, ``failed:<service>``."""
        found: list[str] = []
        for record in self.of(slide_id):
            if record.topic == Topic.SLIDES_QC.value:
                found.append(f"qc:{record.json().get('verdict')}")
            elif record.topic == Topic.SLIDES_REJECTED.value:
                found.append(f"rejected:{record.json().get('step')}")
            elif record.topic.startswith("dlq."):
                found.append(f"failed:{record.topic.split('.')[1]}")
        return found

    def decision_counts(self, slide_id: str) -> Counter[str]:
        return Counter(r.topic for r in self.of(slide_id, DECISION_TOPICS))

    def duplicates(self, slide_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Per slide, the decision topics that hold more than one record for it."""
        found: dict[str, dict[str, int]] = {}
        for slide_id in slide_ids:
            extra = {t: n for t, n in self.decision_counts(slide_id).items() if n > 1}
            if extra:
                found[slide_id] = extra
        return found

    def acknowledged_undecided(self, slide_ids: Iterable[str]) -> list[str]:
        """Consumed records a step committed (acknowledged) without its decision in the log:
        ``<step>:<topic>/<partition>@<offset>`` for each."""
        wanted = set(slide_ids)
        missing: list[str] = []
        for step, topic in CONSUMED.items():
            committed = self.committed.get(step, {})
            for record in self.records:
                if record.topic != topic or record.key not in wanted:
                    continue
                if record.offset >= committed.get((record.topic, record.partition), 0):
                    continue
                if not self._decided(step, record):
                    missing.append(f"{step}:{topic}/{record.partition}@{record.offset}")
        return missing

    def _decided(self, step: str, consumed: LogRecord) -> bool:
        assert consumed.key is not None
        for record in self.of(consumed.key, DECIDED_BY[step]):
            if record.topic == Topic.SLIDES_REJECTED.value and record.json().get("step") != step:
                continue
            return True
        return False

    def first_decision_after(
        self,
        slide_ids: Iterable[str],
        moment_s: float,
        topics: Iterable[str] = DECISION_TOPICS,
    ) -> float | None:
        """When the first decision (on ``topics``) about one of ``slide_ids`` was appended
        after ``moment_s``."""
        wanted, on = set(slide_ids), set(topics)
        times = [
            r.timestamp_s
            for r in self.records
            if r.topic in on and r.key in wanted and not r.injected and r.timestamp_s > moment_s
        ]
        return min(times, default=None)

    def last_terminal_time(self, slide_ids: Iterable[str]) -> float | None:
        wanted = set(slide_ids)
        times = [
            r.timestamp_s
            for r in self.records
            if r.key in wanted
            and not r.injected
            and (
                r.topic in (Topic.SLIDES_QC.value, Topic.SLIDES_REJECTED.value)
                or r.topic.startswith("dlq.")
            )
        ]
        return max(times, default=None)

    def dead_letters(self, slide_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The dead letters about each of ``slide_ids`` (keyed by the original record's key)."""
        wanted = set(slide_ids)
        found: dict[str, list[dict[str, Any]]] = {}
        for record in self.records:
            if record.topic.startswith("dlq.") and record.key in wanted:
                found.setdefault(record.key, []).append(record.json())
        return found

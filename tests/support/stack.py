"""Helpers every service's integration tests share: a collector of what a service publishes,
a consumer group started at the end of a topic, and the stack's object store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from slidestream_platform.objectstore.minio_store import MinioObjectStore
from slidestream_platform.objectstore.settings import ObjectStoreSettings


def object_store(stack_env: dict[str, str]) -> MinioObjectStore:
    return MinioObjectStore(
        ObjectStoreSettings(
            endpoint=stack_env["S3_ENDPOINT"],
            access_key=stack_env["S3_ACCESS_KEY"],
            secret_key=stack_env["S3_SECRET_KEY"],
        )
    )


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = sorted(int(p["partition"]) for p in description.get("partitions", ()))
    assert found, f"{topic} has no partitions"
    return found


async def commit_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Start ``group`` at the end of ``topic``: the shared stack's history is not ours to replay."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
    finally:
        await consumer.stop()


@dataclass
class Record:
    topic: str
    key: str | None
    headers: dict[str, str]
    value: dict[str, Any]
    partition: int = -1
    offset: int = -1
    raw: bytes = b""
    """The record's value as published (a test may publish it again, byte for byte)."""


@dataclass
class Collector:
    """Every record published on ``topics`` from the moment :meth:`start` returns."""

    bootstrap: str
    topics: Sequence[str]
    records: list[Record] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in await partitions_of(self.bootstrap, topic)
        ]
        await consumer.start()
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end positions now, before anything is published
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer))

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self.records.append(
                        Record(
                            topic=record.topic,
                            key=record.key.decode() if record.key else None,
                            headers={k: v.decode() for k, v in record.headers or ()},
                            value=json.loads(record.value),
                            partition=record.partition,
                            offset=record.offset,
                            raw=record.value,
                        )
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    def of(self, slide_id: UUID, topic: str | None = None) -> list[Record]:
        return [
            r
            for r in self.records
            if r.key == str(slide_id) and (topic is None or r.topic == topic)
        ]

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout_s: float = 120.0, what: str = ""
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if predicate():
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or predicate}")

    async def settle(self, seconds: float = 3.0) -> None:
        """Give a duplicate the time to show up."""
        await asyncio.sleep(seconds)

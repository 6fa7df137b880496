"""Know whether an event was published, across crashes and retries (the Kafka half of
:mod:`slidestream_platform.decisions`, which every slide step and upload publish through).

Kafka's idempotent producer removes duplicates within one producer session; it cannot know that a
process which died *after* the broker acknowledged an event but *before* the caller recorded that,
has already sent it. So a publication that must happen once (``slides.uploaded.v1`` per upload)
goes in three durable steps:

1. :meth:`VerifiedPublisher.mark`: note the partition the event's key maps to and that partition's
   current end offset, and record them with a deterministic event id (caller's database);
2. publish the event with that id as its CloudEvents ``ce_id``;
3. record "published" (caller's database).

A retry that finds step 1 recorded but not step 3 calls :meth:`was_published`, which reads the
partition from the marked offset and looks for the event id, and only publishes if it is absent.
Any record appended after the mark is after it in the log, so the scan is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from slidestream_contracts.envelope import event_key
from slidestream_contracts.events import SlideEvent
from slidestream_platform.errors import RetryableError

SCAN_POLL_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class PublishMark:
    partition: int
    from_offset: int


class VerifiedPublisher:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._partitioner = DefaultPartitioner()

    async def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            # Only committed records count (no transactions are used, but be explicit).
            isolation_level="read_committed",
        )
        await consumer.start()
        return consumer

    async def _partitions(self, topic: str) -> list[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            [description] = await admin.describe_topics([topic])
        finally:
            await admin.close()
        partitions = sorted(int(p["partition"]) for p in description.get("partitions", ()))
        if not partitions:
            raise RetryableError(f"topic {topic} has no partitions (does it exist?)")
        return partitions

    async def mark(self, event: SlideEvent) -> PublishMark:
        topic = event.TOPIC.value
        partitions = await self._partitions(topic)
        consumer = await self._consumer()
        try:
            # The same partitioner the producer uses (murmur2 of the key, as Kafka's Java client).
            partition = int(self._partitioner(event_key(event), partitions, partitions))
            tp = TopicPartition(topic, partition)
            end = await consumer.end_offsets([tp])
            return PublishMark(partition=partition, from_offset=int(end[tp]))
        finally:
            await consumer.stop()

    async def was_published(self, event: SlideEvent, mark: PublishMark, event_id: UUID) -> bool:
        """Whether a record with ``ce_id == event_id`` sits at or after ``mark``."""
        tp = TopicPartition(event.TOPIC.value, mark.partition)
        wanted = str(event_id).encode()
        consumer = await self._consumer()
        try:
            consumer.assign([tp])
            end = int((await consumer.end_offsets([tp]))[tp])
            if end <= mark.from_offset:
                return False
            consumer.seek(tp, mark.from_offset)
            while True:
                batches = await consumer.getmany(tp, timeout_ms=SCAN_POLL_TIMEOUT_MS)
                records = batches.get(tp, [])
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get("ce_id") == wanted:
                        return True
                position = await consumer.position(tp)
                if position >= end:
                    return False
                if not records:
                    raise RetryableError(f"could not read {tp} up to offset {end}")
        finally:
            await consumer.stop()

"""The topics read back from their earliest offsets, outside any consumer group (reindex, and
the operators' dead-letter tool :mod:`slidestream_catalog.dead_letters`).

The consumer joins no group and commits nothing: it is assigned every partition of the topics,
reads a fixed range of offsets per partition and stops, so the service's own group and its
committed offsets are never touched. Each record is decoded by the topic's event model
(:data:`slidestream_contracts.events.EVENT_BY_TOPIC`), the model FastStream decodes the live
messages with; a record that does not decode is handed on as :class:`Undecodable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from slidestream_catalog.ports import Offsets, Partition, Undecodable
from slidestream_contracts.events import EVENT_BY_TOPIC, SlideEvent

FETCH_TIMEOUT_MS = 1000


class KafkaEventLog:
    """Reads ranges of the given topics with a group-less consumer (see the module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        *,
        client_id: str = "slidestream-catalog-reindex",
    ) -> None:
        self._bootstrap = bootstrap
        self._topics = tuple(topics)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=client_id,
        )
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> KafkaEventLog:
        await self._consumer.start()
        known = await self._consumer.topics()
        # A topic nothing was ever published to has no history to replay.
        present = [topic for topic in self._topics if topic in known]
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics(present) if present else []
        finally:
            await admin.close()
        for topic in described:
            numbers = sorted(int(p["partition"]) for p in topic.get("partitions", ()))
            self._partitions.extend(TopicPartition(topic["topic"], n) for n in numbers)
        self._consumer.assign(self._partitions)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def earliest(self) -> Offsets:
        found = await self._consumer.beginning_offsets(self._partitions)
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def latest(self) -> Offsets:
        found = await self._consumer.end_offsets(self._partitions)
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def since(self, timestamp_ms: int) -> Offsets:
        """Per partition, the first offset of a record written at or after ``timestamp_ms`` (the
        end where there is none)."""
        found = await self._consumer.offsets_for_times(
            dict.fromkeys(self._partitions, timestamp_ms)
        )
        end = await self.latest()
        return {
            (tp.topic, tp.partition): hit.offset
            if hit is not None
            else end[(tp.topic, tp.partition)]
            for tp, hit in found.items()
        }

    async def read(
        self, start: Mapping[Partition, int], end: Mapping[Partition, int]
    ) -> AsyncIterator[SlideEvent | Undecodable]:
        """Every event with ``start <= offset < end``, partition by partition in offset order."""
        async for record in self.records(start, end):
            yield _decode(record.topic, record.partition, record.offset, record.value)

    async def records(
        self, start: Mapping[Partition, int], end: Mapping[Partition, int]
    ) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
        """The raw records (key, headers, value) with ``start <= offset < end``."""
        pending = {
            TopicPartition(*key): stop for key, stop in end.items() if start.get(key, 0) < stop
        }
        self._consumer.pause(*self._partitions)
        for tp in pending:
            self._consumer.seek(tp, start.get((tp.topic, tp.partition), 0))
            self._consumer.resume(tp)
        while pending:
            batches = await self._consumer.getmany(*pending, timeout_ms=FETCH_TIMEOUT_MS)
            for tp, records in batches.items():
                stop = pending.get(tp)
                if stop is None:
                    continue
                for record in records:
                    if record.offset >= stop:
                        break
                    yield record
            for tp in list(pending):
                # The position passes offsets that hold no record (transaction markers).
                if await self._consumer.position(tp) >= pending[tp]:
                    self._consumer.pause(tp)
                    del pending[tp]


def _decode(
    topic: str, partition: int, offset: int, value: bytes | None
) -> SlideEvent | Undecodable:
    model = EVENT_BY_TOPIC.get(topic)
    if model is None or value is None:
        return Undecodable(topic, partition, offset, "no event model or an empty record")
    try:
        return model.model_validate_json(value)
    except ValidationError as error:
        return Undecodable(topic, partition, offset, str(error)[:500])

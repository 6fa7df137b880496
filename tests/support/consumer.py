"""An in-memory stand-in for the part of ``aiokafka.AIOKafkaConsumer`` that
:func:`slidestream_platform.membership.keep_group_membership` drives, for unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import TopicPartition

MINE = TopicPartition("slides.deidentified.v1", 3)
OTHER = TopicPartition("slides.deidentified.v1", 5)


@dataclass
class Record:
    offset: int


@dataclass
class FakeConsumer:
    """Assigned ``MINE`` and ``OTHER``; ``pending`` records come back from the next poll of an
    unpaused partition; ``polls`` counts the polls."""

    assigned: set[TopicPartition] = field(default_factory=lambda: {MINE, OTHER})
    paused_set: set[TopicPartition] = field(default_factory=set)
    polls: int = 0
    pending: dict[TopicPartition, list[Record]] = field(default_factory=dict)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused_set.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused_set.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_set)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[object]]:
        self.polls += 1
        out: dict[TopicPartition, list[object]] = {}
        for tp, records in self.pending.items():
            if tp not in self.paused_set:
                out[tp] = list(records)
        self.pending.clear()
        return out

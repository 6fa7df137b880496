"""keep_group_membership: partitions paused while the body runs, polled, and resumed after."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from slidestream_platform.membership import keep_group_membership

MINE = TopicPartition("slides.deidentified.v1", 3)
OTHER = TopicPartition("slides.deidentified.v1", 5)


@dataclass
class Record:
    offset: int


@dataclass
class FakeConsumer:
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


async def test_the_body_runs_with_every_partition_paused_and_polls_keep_coming() -> None:
    consumer = FakeConsumer()
    async with keep_group_membership(consumer, poll_every_s=0.01):
        assert consumer.paused() == {MINE, OTHER}
        await asyncio.sleep(0.1)
        assert consumer.polls >= 3
    assert consumer.paused() == set()


async def test_partitions_paused_before_are_left_paused() -> None:
    consumer = FakeConsumer(paused_set={OTHER})
    async with keep_group_membership(consumer, poll_every_s=0.01):
        await asyncio.sleep(0.03)
    assert consumer.paused() == {OTHER}


async def test_records_of_a_partition_assigned_meanwhile_are_put_back() -> None:
    fresh = TopicPartition("slides.deidentified.v1", 7)

    class Rebalancing(FakeConsumer):
        async def getmany(
            self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
        ) -> dict[TopicPartition, list[object]]:
            if fresh not in self.assigned:  # the rebalance lands during this poll
                self.assigned.add(fresh)
                self.polls += 1
                return {fresh: [Record(41), Record(42)]}
            return await super().getmany(timeout_ms=timeout_ms)

    consumer = Rebalancing()
    async with keep_group_membership(consumer, poll_every_s=0.01):
        await asyncio.sleep(0.05)
        assert fresh in consumer.paused()
    assert consumer.seeks == [(fresh, 41)]
    assert consumer.paused() == set()


async def test_a_revoked_partition_is_not_resumed() -> None:
    consumer = FakeConsumer()
    async with keep_group_membership(consumer, poll_every_s=0.01):
        consumer.assigned.discard(OTHER)
    resumed = {MINE, OTHER} - consumer.paused()
    assert MINE in resumed
    assert OTHER in consumer.paused_set  # never resumed: it is no longer ours


async def test_without_a_consumer_the_body_just_runs() -> None:
    ran = False
    async with keep_group_membership(None):
        ran = True
    assert ran

"""keep_group_membership: partitions paused while the body runs, polled, and resumed after."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from slidestream_platform.membership import keep_group_membership
from tests.support.consumer import MINE, OTHER, FakeConsumer, Record


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

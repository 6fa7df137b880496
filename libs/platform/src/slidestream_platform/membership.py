"""Keep a consumer in its group while one message takes longer than ``max.poll.interval.ms``.

A Kafka consumer that does not poll for ``max.poll.interval.ms`` is considered dead: aiokafka
leaves the group (``GroupCoordinator._heartbeat_routine`` compares the fetcher's idle time with
the interval), its partitions move to another member, the offset commit of the slow message
fails and the message is processed a second time. Raising the interval for everyone trades
this for slow failure detection, so a handler that knows its work is long uses
:func:`keep_group_membership` instead (Kafka's documented remedy, KIP-62: pause the partitions
and keep polling):

* every partition assigned to the consumer is **paused**, so polling returns no records and
  the handler's message stays the only one in flight on this consumer;
* a background task **polls** every ``poll_every_s``; each poll resets the idle timer, so the
  member stays in the group however long the work runs, and tells the liveness watch
  (:func:`slidestream_platform.liveness.note_poll`), so ``/healthz`` keeps answering ok;
* if a rebalance hands the consumer new partitions during a poll, any record the poll returns
  is put back by seeking to its offset (nothing is skipped); the new partitions are paused too;
* on exit the partitions paused here and still assigned are resumed, and the caller's normal
  acknowledgement commits the offset — only after the work is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from aiokafka import TopicPartition

from slidestream_platform.liveness import note_poll

logger = logging.getLogger(__name__)

DEFAULT_POLL_EVERY_S = 5.0
"""Far below any sensible ``max.poll.interval.ms`` (Kafka's default is 300 s)."""


class PausableConsumer(Protocol):
    """The part of ``aiokafka.AIOKafkaConsumer`` this module needs."""

    def assignment(self) -> set[TopicPartition]: ...

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    def paused(self) -> set[TopicPartition]: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[object]]: ...


def _pause_all(consumer: PausableConsumer, paused_here: set[TopicPartition]) -> None:
    fresh = consumer.assignment() - consumer.paused()
    if fresh:
        consumer.pause(*fresh)
        paused_here.update(fresh)


async def _poll_while_paused(
    consumer: PausableConsumer, paused_here: set[TopicPartition], poll_every_s: float
) -> None:
    while True:
        await asyncio.sleep(poll_every_s)
        _pause_all(consumer, paused_here)
        batches = await consumer.getmany(timeout_ms=0)
        note_poll()
        for tp, records in batches.items():
            # A rebalance between pausing and fetching assigned a partition that was not paused:
            # put its records back for the normal consumption loop.
            if records:
                first_offset = int(getattr(records[0], "offset"))  # noqa: B009 - ConsumerRecord
                consumer.seek(tp, first_offset)
                logger.info(
                    "put back records fetched while paused",
                    extra={"topic": tp.topic, "partition": tp.partition, "offset": first_offset},
                )
        _pause_all(consumer, paused_here)


@contextlib.asynccontextmanager
async def keep_group_membership(
    consumer: PausableConsumer | None, *, poll_every_s: float = DEFAULT_POLL_EVERY_S
) -> AsyncIterator[None]:
    """Run the body with the consumer's partitions paused and a poll every ``poll_every_s``.

    ``consumer=None`` (a message not from Kafka, e.g. FastStream's test client) runs the body as
    it is.
    """
    if consumer is None or not hasattr(consumer, "getmany"):
        yield
        return
    paused_here: set[TopicPartition] = set()
    _pause_all(consumer, paused_here)
    poller = asyncio.create_task(_poll_while_paused(consumer, paused_here, poll_every_s))
    try:
        yield
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        still_assigned = paused_here & consumer.assignment()
        if still_assigned:
            consumer.resume(*still_assigned)

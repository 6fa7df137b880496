"""slidestream_platform.attempts with the delivery middleware: failed deliveries counted in the
service's own table, so that a message that kills the process is dead-lettered all the same."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faststream.exceptions import AckMessage
from sqlalchemy import Engine
from sqlmodel import Session, select

from slidestream_contracts.events import DeadLetterRecordV1
from slidestream_contracts.states import Step
from slidestream_platform.attempts import MemoryAttempts, SqlDeliveryAttempts
from slidestream_platform.db import DatabaseSettings, make_engine
from slidestream_platform.delivery import DeliveryPolicy, RetryPolicy
from slidestream_platform.errors import DependencyDownError, RetryableError
from slidestream_platform.metrics import ServiceMetrics
from tests.support.delivery import (
    CountingSleep,
    DeliveryAttemptRow,
    RecordingSink,
    attempts_metadata,
    consumed,
)

MAX_ATTEMPTS = 3


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'svc.db'}"), "svc")
    attempts_metadata.create_all(engine)
    yield engine
    engine.dispose()


class Process:
    """One run of the service: a fresh middleware on the service's database, as after a
    restart (nothing of the previous run's memory is left)."""

    def __init__(self, engine: Engine, sink: RecordingSink) -> None:
        self.policy = DeliveryPolicy(
            service="deid",
            step=Step.DEID,
            retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, backoff_initial_s=1.0, backoff_max_s=4.0),
            metrics=ServiceMetrics(),
            sink=sink,  # type: ignore[arg-type]
            attempts=SqlDeliveryAttempts(engine, DeliveryAttemptRow, "deid"),
            sleep=CountingSleep(),
        )

    async def deliver(self, message: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        middleware = self.policy.middleware()(message, context=None)
        return await middleware.consume_scope(handler, message)


async def killed(_message: Any) -> None:
    """The process dies inside the handler (OOM kill, segfault): no exception reaches the
    middleware; cancelling the delivery leaves exactly what such a death leaves behind."""
    raise asyncio.CancelledError


async def handled(_message: Any) -> str:
    return "done"


def rows(engine: Engine) -> list[DeliveryAttemptRow]:
    with Session(engine) as session:
        return list(session.exec(select(DeliveryAttemptRow)))


async def test_a_message_that_kills_every_process_is_dead_lettered_before_it_runs_again(
    engine: Engine,
) -> None:
    sink, message = RecordingSink(), consumed()
    ran: list[int] = []

    async def kills_and_counts(msg: Any) -> None:
        ran.append(1)
        await killed(msg)

    for _restart in range(MAX_ATTEMPTS):
        with pytest.raises(asyncio.CancelledError):
            await Process(engine, sink).deliver(message, kills_and_counts)
    assert sink.dead_letters == []  # a death is counted by the delivery after it

    with pytest.raises(AckMessage):  # the next start: dead-lettered, the offset committed
        await Process(engine, sink).deliver(message, kills_and_counts)
    assert len(ran) == MAX_ATTEMPTS  # the handler did not run again
    [record] = sink.dead_letters
    assert isinstance(record, DeadLetterRecordV1)
    assert (record.error_reason, record.attempts) == ("crash-loop", MAX_ATTEMPTS)
    assert "ended with their process" in record.error_message
    [status] = sink.statuses
    assert (status.state, status.reason) == ("failed:deid", "crash-loop")
    assert rows(engine) == []


async def test_crashes_and_failures_share_one_budget_and_success_clears_it(
    engine: Engine,
) -> None:
    sink, message = RecordingSink(), consumed()
    first = Process(engine, sink)

    async def bug(_message: Any) -> None:
        raise RetryableError("the object changed while it was being read")

    with pytest.raises(RetryableError):
        await first.deliver(message, bug)
    with pytest.raises(asyncio.CancelledError):  # same process, next delivery: it dies
        await first.deliver(message, killed)
    [row] = rows(engine)
    assert (row.failures, row.in_flight) == (1, True)

    assert await Process(engine, sink).deliver(message, handled) == "done"
    assert sink.dead_letters == [] and rows(engine) == []

    # Counted before: one failure, one crash; the third strike dead-letters with its reason.
    again = consumed(offset=8)
    second = Process(engine, sink)
    with pytest.raises(RetryableError):
        await second.deliver(again, bug)
    with pytest.raises(asyncio.CancelledError):
        await second.deliver(again, killed)
    with pytest.raises(AckMessage):
        await Process(engine, sink).deliver(again, bug)
    [record] = sink.dead_letters
    assert (record.error_reason, record.attempts) == ("transient", MAX_ATTEMPTS)


async def test_failures_seen_by_the_middleware_are_no_crash_of_a_later_process(
    engine: Engine,
) -> None:
    sink, message = RecordingSink(), consumed()

    async def down(_message: Any) -> None:
        raise DependencyDownError("Triton: connection refused", dependency="triton")

    for _restart in range(MAX_ATTEMPTS + 2):  # restarts during an outage (a rollout)
        with pytest.raises(DependencyDownError):
            await Process(engine, sink).deliver(message, down)
    [row] = rows(engine)
    assert (row.failures, row.in_flight) == (0, False)
    assert await Process(engine, sink).deliver(message, handled) == "done"
    assert sink.dead_letters == []


def test_the_memory_ledger_counts_failures_and_never_a_crash() -> None:
    ledger, position = MemoryAttempts(), ("slides.uploaded.v1", 0, 7)
    assert ledger.begin(position).failures == 0
    assert [ledger.fail(position), ledger.fail(position)] == [1, 2]
    assert ledger.begin(position).crashed is False
    ledger.forget(position)
    assert ledger.begin(position).failures == 0

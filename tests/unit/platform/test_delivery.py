from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.exceptions import AckMessage
from pydantic import BaseModel, ValidationError

from slidestream_contracts.events import DeadLetterRecordV1
from slidestream_contracts.states import Step
from slidestream_platform.delivery import DeliveryPolicy, RetryPolicy, disposition
from slidestream_platform.errors import (
    AccessError,
    DependencyDownError,
    ObjectNotFoundError,
    PoisonError,
    RetryableError,
)
from slidestream_platform.metrics import ServiceMetrics
from tests.support.delivery import (
    SLIDE_ID,
    CountingSleep,
    RecordingSink,
    consumed,
    database_unreachable,
    store_unreachable,
)


class _Model(BaseModel):
    x: int


def _validation_error() -> ValidationError:
    try:
        _Model.model_validate({"x": "nope"})
    except ValidationError as error:
        return error
    raise AssertionError("expected a validation error")


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(max_attempts=6, backoff_initial_s=0.5, backoff_max_s=3.0)
    assert [policy.backoff_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("error", "dead_letter_now", "reason"),
    [
        (PoisonError("corrupt tile"), True, "poison"),
        (ObjectNotFoundError("gone"), True, "object-not-found"),
        (AccessError("403"), True, "access-denied"),
        (_validation_error(), True, "invalid-event"),
        (json.JSONDecodeError("bad", "{", 0), True, "invalid-event"),
        (RetryableError("503"), False, "transient"),
        (ConnectionError("reset"), False, "unhandled-error"),
        (RuntimeError("bug"), False, "unhandled-error"),
    ],
)
def test_disposition(error: Exception, dead_letter_now: bool, reason: str) -> None:
    verdict = disposition(error)
    assert verdict.dead_letter_now is dead_letter_now
    assert verdict.reason == reason


def test_errors_can_carry_a_specific_reason() -> None:
    assert PoisonError("x", reason="phi-residual").reason == "phi-residual"
    assert PoisonError("x").reason == "poison"


def test_a_server_that_is_down_is_waited_for_and_never_dead_letters() -> None:
    verdict = disposition(DependencyDownError("Triton: connection refused", dependency="triton"))
    assert (verdict.dead_letter_now, verdict.dependency) == (False, "triton")
    assert disposition(RetryableError("503")).dependency is None
    policy = RetryPolicy(max_attempts=5, backoff_initial_s=0.5, backoff_max_s=30.0)
    assert policy.backoff_s(5000) == 30.0  # counting without end never overflows


async def test_the_middleware_redelivers_a_waiting_message_past_every_attempt_budget() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = DeliveryPolicy(
        service="inference",
        step=Step.INFERENCE,
        retry=RetryPolicy(max_attempts=2, backoff_initial_s=1.0, backoff_max_s=4.0),
        metrics=ServiceMetrics(),
        sleep=sleep,
    )
    message = SimpleNamespace(
        raw_message=SimpleNamespace(topic="slides.qc.v1", partition=0, offset=7)
    )
    for _ in range(10):  # a sink is never needed: nothing is dead-lettered
        with pytest.raises(DependencyDownError):
            await policy.handle_failure(message, DependencyDownError("down"))  # type: ignore[arg-type]
    assert slept == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]


class _Sink:
    def __init__(self) -> None:
        self.dead_letters: list[object] = []
        self.statuses: list[object] = []

    async def publish_dead_letter(self, record: object) -> None:
        self.dead_letters.append(record)

    async def publish_status(self, event: object) -> None:
        self.statuses.append(event)


@pytest.mark.parametrize(("topic", "statuses"), [("slides.qc.v1", 1), ("slides.uploaded.v1", 0)])
async def test_a_projected_topic_dead_letters_without_failing_the_step(
    topic: str, statuses: int
) -> None:
    sink = _Sink()
    policy = DeliveryPolicy(
        service="inference",
        step=Step.INFERENCE,
        retry=RetryPolicy(max_attempts=1, backoff_initial_s=1.0, backoff_max_s=1.0),
        metrics=ServiceMetrics(),
        sink=sink,  # type: ignore[arg-type]
        projected_topics={"slides.uploaded.v1"},
    )
    body = json.dumps({"slide_id": "0193a0d6-0000-7000-8000-000000000001", "tenant": "lab-a"})
    message = SimpleNamespace(
        raw_message=SimpleNamespace(
            topic=topic,
            partition=0,
            offset=3,
            key=b"0193a0d6-0000-7000-8000-000000000001",
            headers=[],
            value=body.encode(),
        )
    )
    with pytest.raises(AckMessage):
        await policy.handle_failure(message, PoisonError("malformed"))  # type: ignore[arg-type]
    # Dead-lettered either way (nothing is lost); only the step's own topic fails the slide.
    assert len(sink.dead_letters) == 1 and len(sink.statuses) == statuses


@pytest.mark.parametrize(
    "make_error",
    [
        store_unreachable,
        database_unreachable,
        lambda: KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 19092)]"),
    ],
    ids=["object-store", "database", "kafka"],
)
async def test_an_outage_longer_than_the_attempt_budget_is_waited_out_not_dead_lettered(
    make_error: Callable[[], Exception],
) -> None:
    sink, sleep = RecordingSink(), CountingSleep()
    policy = DeliveryPolicy(
        service="deid",
        step=Step.DEID,
        retry=RetryPolicy(max_attempts=5, backoff_initial_s=0.5, backoff_max_s=60.0),
        metrics=ServiceMetrics(),
        sink=sink,  # type: ignore[arg-type]
        sleep=sleep,
    )
    message = consumed()
    error = make_error()
    for _ in range(12):  # the outage lasts; every redelivery meets it again
        with pytest.raises(type(error)):
            await policy.handle_failure(message, error)
    assert sink.dead_letters == [] and sink.statuses == []
    assert sleep.total_s > 7.5  # what five attempts used to wait before dead-lettering
    assert max(sleep.slept_s) == 60.0  # capped


async def test_every_dead_letter_runs_the_services_hooks_first() -> None:
    sink, seen = RecordingSink(), []

    async def hook(record: DeadLetterRecordV1) -> None:
        assert len(sink.dead_letters) == len(seen)  # before it is out: a failure redelivers
        seen.append((record.slide_id, record.error_reason))

    policy = DeliveryPolicy(
        service="deid",
        step=Step.DEID,
        retry=RetryPolicy(max_attempts=2, backoff_initial_s=1.0, backoff_max_s=1.0),
        metrics=ServiceMetrics(),
        sink=sink,  # type: ignore[arg-type]
        sleep=CountingSleep(),
        dead_letter_hooks=[hook],
    )
    with pytest.raises(AckMessage):
        await policy.handle_failure(consumed(offset=1), PoisonError("corrupt"))
    with pytest.raises(RuntimeError):  # a bug: retried once, then dead-lettered
        await policy.handle_failure(consumed(offset=2), RuntimeError("bug"))
    with pytest.raises(AckMessage):
        await policy.handle_failure(consumed(offset=2), RuntimeError("bug"))
    assert seen == [(SLIDE_ID, "poison"), (SLIDE_ID, "unhandled-error")]
    assert len(sink.dead_letters) == 2


async def test_a_dead_letter_that_cannot_be_written_waits_before_it_is_tried_again() -> None:
    class DownSink(RecordingSink):
        down = True

        async def publish_dead_letter(self, record: Any) -> None:
            if self.down:
                raise KafkaConnectionError("no broker")
            await super().publish_dead_letter(record)

    sink, sleep = DownSink(), CountingSleep()
    policy = DeliveryPolicy(
        service="deid",
        step=Step.DEID,
        retry=RetryPolicy(max_attempts=1, backoff_initial_s=1.0, backoff_max_s=8.0),
        metrics=ServiceMetrics(),
        sink=sink,  # type: ignore[arg-type]
        sleep=sleep,
    )
    message = consumed()
    for _ in range(3):
        with pytest.raises(KafkaConnectionError):
            await policy.handle_failure(message, PoisonError("corrupt"))
    assert sleep.slept_s == [1.0, 2.0, 4.0]  # no redelivery at full speed while Kafka is down
    assert policy.outages.current() == {"kafka": "KafkaConnectionError (a delivery waits)"}
    sink.down = False
    with pytest.raises(AckMessage):
        await policy.handle_failure(message, PoisonError("corrupt"))
    assert len(sink.dead_letters) == 1 and policy.outages.current() == {}

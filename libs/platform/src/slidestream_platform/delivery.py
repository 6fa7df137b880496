"""The one middleware that decides what happens to a consumed message.

Kafka offsets are committed only by FastStream's acknowledgement step, which runs after this
middleware (broker ``ack_policy=NACK_ON_ERROR``):

* before the handler, every object the event refers to must lie under its own slide's prefix
  (:mod:`slidestream_platform.event_refs`); one that does not is a poison message, below;
* before the handler runs, the delivery is recorded in the service's own table
  (:mod:`slidestream_platform.attempts`); a message whose last ``kafka_max_attempts`` deliveries
  ended with their process (killed for memory, a segfault) is dead-lettered there and then
  (``crash-loop``) instead of killing the next process too;
* the handler returned → the offset is committed (its outputs were written and its events published
  with ``acks=all`` before it returned);
* :class:`~slidestream_platform.errors.PoisonError` / ``AccessError`` / an undecodable message →
  the message is written to ``dlq.<service>.v1`` and a ``failed:<step>`` status is published; only
  once both are acknowledged by Kafka is the offset committed;
* a dependency down (:func:`slidestream_platform.outages.dependency_down`: a
  :class:`~slidestream_platform.errors.DependencyDownError`, or the object store, the database or
  Kafka unreachable) → redelivered after a capped exponential backoff for as long as it lasts,
  never dead-lettered, no attempt counted; ``/readyz`` reports the dependency down meanwhile;
* anything else (other transient faults, bugs) → the exception propagates, FastStream *nacks*
  (seeks back to the message, nothing committed) and the message is redelivered after a backoff;
  after ``kafka_max_attempts`` failed attempts (counted durably) it is dead-lettered as above.

Every dead-lettered message goes through the service's dead-letter hooks first (deid schedules
the slide's quarantine retention there). If a hook or the dead-letter publish fails, the error
propagates and the message is redelivered: nothing is acknowledged that is not durably somewhere.

Each message's handling, backoff included, is registered with the liveness watch
(:mod:`slidestream_platform.liveness`), which ``/healthz`` reads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from faststream import BaseMiddleware
from faststream.exceptions import AckMessage
from faststream.message import StreamMessage
from opentelemetry import trace
from pydantic import ValidationError

from slidestream_contracts.events import DeadLetterRecordV1, SlideStatusV1
from slidestream_contracts.reasons import UNKNOWN_REASON, explain
from slidestream_contracts.states import SlideState, Step
from slidestream_platform.attempts import AttemptLedger, MemoryAttempts, Position
from slidestream_platform.errors import (
    AccessError,
    CrashLoopError,
    DependencyDownError,
    InvalidEventError,
    PoisonError,
    SlidestreamError,
)
from slidestream_platform.event_refs import check_message_refs
from slidestream_platform.liveness import ConsumerWatch
from slidestream_platform.metrics import ServiceMetrics
from slidestream_platform.outages import DATABASE, Outages, dependency_down

logger = logging.getLogger(__name__)

MAX_ERROR_MESSAGE_CHARS = 4000
DeadLetterHook = Callable[[DeadLetterRecordV1], Awaitable[None]]
"""Runs before a message is dead-lettered (a failure redelivers the message)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float

    def backoff_s(self, attempt: int) -> float:
        """Exponential backoff before delivery ``attempt + 1`` (attempt counts from 1)."""
        # The exponent stops growing long before the cap matters: a message that waits for a
        # server counts attempts without end, and 2**1100 is no float.
        doublings = min(attempt - 1, 32)
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2**doublings))


class DeliverySink(Protocol):
    """Where dead letters and failure statuses are published (the service's event publisher)."""

    async def publish_dead_letter(self, record: DeadLetterRecordV1) -> None: ...

    async def publish_status(self, event: SlideStatusV1) -> None: ...


@dataclass(slots=True)
class DeliveryTracker:
    """Consecutive waits per (topic, partition, offset) in this process: they only pace the
    backoff of a message waiting for a dependency (what counts towards a dead letter is
    :mod:`slidestream_platform.attempts`' durable count)."""

    waits: dict[Position, int] = field(default_factory=dict)

    def record(self, position: Position) -> int:
        self.waits[position] = self.waits.get(position, 0) + 1
        return self.waits[position]

    def forget(self, position: Position) -> None:
        self.waits.pop(position, None)


@dataclass(frozen=True, slots=True)
class Disposition:
    dead_letter_now: bool
    reason: str
    dependency: str | None = None
    """Set when the error says this dependency is down: the message waits for it."""


def disposition(error: BaseException) -> Disposition:
    """Where an exception sends its message: dead letters at once, a wait, or redelivery."""
    if isinstance(error, (PoisonError, AccessError)):
        return Disposition(dead_letter_now=True, reason=error.reason)
    if isinstance(error, (ValidationError, UnicodeDecodeError, json.JSONDecodeError)):
        # FastStream decodes the body into the handler's pydantic model inside the handler
        # call; a message that does not decode now never will.
        return Disposition(dead_letter_now=True, reason=InvalidEventError.reason)
    dependency = dependency_down(error)
    if dependency is not None:
        down = error if isinstance(error, DependencyDownError) else DependencyDownError
        reason = down.reason
        return Disposition(dead_letter_now=False, reason=reason, dependency=dependency)
    if isinstance(error, SlidestreamError):
        return Disposition(dead_letter_now=False, reason=error.reason)
    return Disposition(dead_letter_now=False, reason="unhandled-error")


def _position(message: StreamMessage[Any]) -> Position:
    raw = message.raw_message
    return (str(raw.topic), int(raw.partition), int(raw.offset))


def _where(position: Position) -> dict[str, object]:
    return {"topic": position[0], "partition": position[1], "offset": position[2]}


def _headers_as_text(raw: dict[str, Any]) -> dict[str, str]:
    text: dict[str, str] = {}
    for name, value in raw.items():
        text[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text


def _slide_id(headers: dict[str, str], key: bytes | None) -> UUID | None:
    for candidate in (headers.get("ce_subject"), key.decode("utf-8", "replace") if key else None):
        if candidate:
            try:
                return UUID(candidate)
            except ValueError:
                continue
    return None


def _tenant(body: bytes) -> str | None:
    """Best effort: the tenant of a message that may not decode (for the failed status)."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    tenant = decoded.get("tenant") if isinstance(decoded, dict) else None
    return tenant if isinstance(tenant, str) else None


@dataclass(slots=True)
class DeliveryPolicy:
    """Everything the middleware needs; one per service, built in ``main.py``."""

    service: str
    step: Step | None
    """Pipeline step of the service (``None`` for projections that move no slide forward)."""
    retry: RetryPolicy
    metrics: ServiceMetrics
    sink: DeliverySink | None = None
    """Set once the broker exists (the publisher needs the broker, the broker this policy)."""
    attempts: AttemptLedger = field(default_factory=MemoryAttempts)
    """Failed attempts per message; a service's is its own table (``SqlDeliveryAttempts``)."""
    outages: Outages = field(default_factory=Outages)
    tracker: DeliveryTracker = field(default_factory=DeliveryTracker)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    projected_topics: set[str] = field(default_factory=set)
    """Topics the service only records facts from (inference's ``slides.uploaded.v1``): a
    message it cannot process there is dead-lettered, but is no failure of the service's step,
    so no ``failed:<step>`` status overwrites the slide's state."""
    watch: ConsumerWatch = field(default_factory=ConsumerWatch)
    """The messages in flight, for ``/healthz``."""
    dead_letter_hooks: list[DeadLetterHook] = field(default_factory=list)

    def middleware(self) -> Callable[..., BaseMiddleware]:
        policy = self

        def factory(msg: Any, /, **kwargs: Any) -> BaseMiddleware:
            return _DeliveryMiddleware(msg, policy=policy, **kwargs)

        return factory

    async def begin(self, message: StreamMessage[Any]) -> None:
        """Record the delivery before the handler runs; dead-letter a message whose deliveries
        keep ending with their process (then :class:`AckMessage` skips the handler)."""
        position = _position(message)
        attempt = await asyncio.to_thread(self.attempts.begin, position)
        if not attempt.crashed:
            return
        logger.warning(
            "an earlier delivery of this message ended with its process",
            extra={**_where(position), "attempt": attempt.failures},
        )
        if attempt.failures < self.retry.max_attempts:
            return
        error = CrashLoopError(
            f"{attempt.failures} deliveries of this message ended with their process before any"
            " outcome (killed for memory, a crash in native code); it is not handled again"
        )
        await self._dead_letter_and_ack(message, error, error.reason, attempt.failures)

    async def handle_failure(self, message: StreamMessage[Any], error: Exception) -> None:
        """Dead-letter now, or re-raise for a redelivery after a backoff."""
        position = _position(message)
        verdict = disposition(error)
        if verdict.dependency is not None:
            await self._wait_for(verdict.dependency, position, error)
            raise error
        failures, ledger_error = await self._count_failure(position)
        if ledger_error is not None:  # the count's database is down: wait for it
            await self._wait_for(dependency_down(ledger_error) or DATABASE, position, ledger_error)
            raise error
        if not verdict.dead_letter_now and failures < self.retry.max_attempts:
            backoff_s = self.retry.backoff_s(failures)
            logger.warning(
                "delivery failed, will redeliver",
                extra={
                    **_where(position),
                    "attempt": failures,
                    "backoff_s": backoff_s,
                    "error_class": type(error).__name__,
                },
            )
            self.metrics.retries.labels(topic=position[0]).inc()
            await self.sleep(backoff_s)
            raise error
        await self._dead_letter_and_ack(message, error, verdict.reason, failures)

    async def _count_failure(self, position: Position) -> tuple[int, Exception | None]:
        try:
            return await asyncio.to_thread(self.attempts.fail, position), None
        except Exception as ledger_error:  # reported to the caller, which waits for it
            return 0, ledger_error

    async def _dead_letter_and_ack(
        self, message: StreamMessage[Any], error: Exception, reason: str, attempts: int
    ) -> None:
        """Dead-letter, forget the count, commit; if the dead letter cannot be written (Kafka
        down, a hook's database down), back off before the redelivery tries again."""
        position = _position(message)
        try:
            await self._dead_letter(message, error, reason, attempts)
        except Exception as failure:
            await self._wait_for(dependency_down(failure), position, failure)
            raise
        await self._forget(position)
        raise AckMessage()

    async def succeeded(self, message: StreamMessage[Any]) -> None:
        """The handler returned: what the message waited for is back, its count goes."""
        position = _position(message)
        try:
            await self._forget(position)
        except Exception:  # the work is done and durable; a stale row only costs a row
            logger.warning("could not clear the delivery's attempts", extra=_where(position))

    async def _wait_for(self, dependency: str | None, position: Position, error: Exception) -> None:
        """Back off before the redelivery of a message whose dependency is down (reported to
        ``/readyz`` when named)."""
        if dependency is not None:
            self.outages.report(dependency, position, error)
        if dependency != DATABASE:  # no write when the ledger's own database is what is down
            try:
                await asyncio.to_thread(self.attempts.wait, position)
            except Exception:  # the mark stays; this process knows it began the delivery
                logger.debug("could not clear the in-flight mark", extra=_where(position))
        backoff_s = self.retry.backoff_s(self.tracker.record(position))
        logger.warning(
            "dependency down, delivery waits",
            extra={
                **_where(position),
                "dependency": dependency,
                "backoff_s": backoff_s,
                "error_class": type(error).__name__,
            },
        )
        self.metrics.retries.labels(topic=position[0]).inc()
        await self.sleep(backoff_s)

    async def _forget(self, position: Position) -> None:
        """The message is done (handled or dead-lettered): whatever it waited for is back."""
        self.tracker.forget(position)
        self.outages.resolved(position)
        await asyncio.to_thread(self.attempts.forget, position)

    async def _dead_letter(
        self,
        message: StreamMessage[Any],
        error: Exception,
        reason: str,
        attempts: int,
    ) -> None:
        raw = message.raw_message
        headers = _headers_as_text(dict(raw.headers or ()))
        key: bytes | None = raw.key
        body: bytes = raw.value or b""
        span_context = trace.get_current_span().get_span_context()
        slide_id = _slide_id(headers, key)
        record = DeadLetterRecordV1(
            service=self.service,
            original_topic=raw.topic,
            original_partition=raw.partition,
            original_offset=raw.offset,
            original_key=key.decode("utf-8", "replace") if key else None,
            original_headers=headers,
            payload_base64=base64.b64encode(body).decode("ascii"),
            error_class=f"{type(error).__module__}.{type(error).__qualname__}",
            error_reason=reason,
            error_message=str(error)[:MAX_ERROR_MESSAGE_CHARS],
            attempts=attempts,
            trace_id=format(span_context.trace_id, "032x") if span_context.is_valid else "",
            slide_id=slide_id,
        )
        logger.error(
            "message dead-lettered",
            extra={
                "topic": raw.topic,
                "partition": raw.partition,
                "offset": raw.offset,
                "error_class": record.error_class,
                "reason": reason,
                "attempts": attempts,
            },
        )
        if self.sink is None:
            raise RuntimeError("DeliveryPolicy.sink was never bound to a publisher")
        for hook in self.dead_letter_hooks:
            await hook(record)
        await self.sink.publish_dead_letter(record)
        self.metrics.dead_letters.labels(topic=raw.topic, reason=reason).inc()
        tenant = _tenant(body)
        step = None if raw.topic in self.projected_topics else self.step
        if step is not None and slide_id is not None and tenant is not None:
            await self.sink.publish_status(
                SlideStatusV1(
                    slide_id=slide_id,
                    tenant=tenant,
                    state=SlideState.failed(step),
                    step=step,
                    reason=reason,
                    # Words for the partner; the class and message stay in the dead letter.
                    detail=(explain(reason) or UNKNOWN_REASON).summary,
                )
            )


class _DeliveryMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, policy: DeliveryPolicy, **kwargs: Any) -> None:
        super().__init__(msg, **kwargs)
        self.policy = policy

    async def consume_scope(
        self,
        call_next: Callable[[StreamMessage[Any]], Awaitable[Any]],
        msg: StreamMessage[Any],
    ) -> Any:
        raw = msg.raw_message
        with self.policy.watch.handling(str(raw.topic)):
            try:
                check_message_refs(str(raw.topic), msg.body)
                await self.policy.begin(msg)
                result = await call_next(msg)
            except AckMessage:
                raise
            except Exception as error:  # the policy decides; nothing is swallowed
                await self.policy.handle_failure(msg, error)
                raise
        await self.policy.succeeded(msg)
        return result

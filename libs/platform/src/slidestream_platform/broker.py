"""The Kafka broker of a service, configured the one way slidestream consumes and produces.

FastStream's Kafka defaults are not ours (docs/architecture.md, "Delivery: effectively once"):

* producer: ``acks=all`` with idempotence, so an acknowledged event survives a broker failure and a
  retried send is not duplicated;
* consumer: never auto-commit. ``ack_policy=NACK_ON_ERROR`` commits an offset after the handler
  returned, and seeks back on an exception; :mod:`slidestream_platform.delivery` turns endless
  redelivery into bounded retries and dead letters;
* ``auto_offset_reset`` is explicit (``earliest``: a new group misses no slide).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.sdk.trace import TracerProvider

from slidestream_contracts.envelope import Envelope, dead_letter_envelope, envelope_for, event_key
from slidestream_contracts.events import DeadLetterRecordV1, SlideEvent, SlideStatusV1
from slidestream_contracts.states import Step
from slidestream_contracts.topics import Topic, dead_letter_topic
from slidestream_platform.attempts import AttemptLedger, MemoryAttempts
from slidestream_platform.delivery import DeliveryPolicy, RetryPolicy
from slidestream_platform.liveness import Clock, ConsumerWatch
from slidestream_platform.metrics import ServiceMetrics
from slidestream_platform.outages import Outages
from slidestream_platform.settings import ServiceSettings

PRODUCER_LINGER_MS = 5
OUTAGE_GRACE_S = 60.0
"""How long a failing call may take (connect timeouts, the SDK's own retries)."""
"""Small batching window: events are tiny and latency matters more than throughput."""


@dataclass(frozen=True, slots=True)
class EventPublisher:
    """Publishes slide events with the envelope: key = slide id, CloudEvents headers, JSON body."""

    broker: KafkaBroker
    service: str

    async def publish(self, event: SlideEvent, *, event_id: UUID | None = None) -> None:
        """Publish ``event``; ``event_id`` (the CloudEvents id) lets consumers spot a re-send."""
        envelope = envelope_for(event, service=self.service, event_id=event_id)
        await self._send(
            event.TOPIC.value, event.model_dump_json().encode(), envelope, event_key(event)
        )

    async def publish_status(self, event: SlideStatusV1) -> None:
        await self.publish(event)

    async def publish_dead_letter(self, record: DeadLetterRecordV1) -> None:
        envelope = dead_letter_envelope(record)
        # The original headers ride along (traceparent included) so the dead letter stays in
        # the slide's trace; the envelope's own ce_* headers replace the original ones.
        headers = {k: v for k, v in record.original_headers.items() if not k.startswith("ce_")}
        key = record.original_key.encode() if record.original_key else None
        await self._send(
            dead_letter_topic(record.service),
            record.model_dump_json().encode(),
            envelope,
            key,
            extra_headers=headers,
        )

    async def _send(
        self,
        topic: str,
        body: bytes,
        envelope: Envelope,
        key: bytes | None,
        *,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        headers = {**(extra_headers or {}), **envelope.to_headers()}
        await self.broker.publish(body, topic=topic, key=key, headers=headers)


@dataclass(slots=True)
class ServiceBus:
    """What ``main.py`` gets: the broker, a publisher, and a way to subscribe handlers."""

    broker: KafkaBroker
    publisher: EventPublisher
    settings: ServiceSettings
    metrics: ServiceMetrics
    delivery: DeliveryPolicy

    def subscribe(
        self,
        topic: Topic | str,
        handler: Callable[..., Awaitable[Any]],
        *,
        projection: bool = False,
    ) -> None:
        """Consume ``topic`` in the service's group with slidestream's consumer settings;
        ``projection``: the service only records facts from it (its failures there publish no
        ``failed:<step>`` status)."""
        if projection:
            self.delivery.projected_topics.add(str(topic))
        self.broker.subscriber(
            str(topic),
            group_id=self.settings.consumer_group,
            auto_offset_reset=self.settings.kafka_auto_offset_reset,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            max_poll_interval_ms=int(self.settings.kafka_max_poll_interval_s * 1000),
        )(handler)


def make_bus(
    settings: ServiceSettings,
    *,
    step: Step | None,
    tracer_provider: TracerProvider,
    metrics: ServiceMetrics | None = None,
    clock: Clock = time.monotonic,
    attempts: AttemptLedger | None = None,
) -> ServiceBus:
    """The broker, publisher and delivery policy of a service (``clock``: the liveness
    watch's, a fake one in tests). ``attempts``: where failed deliveries are counted, the
    service's own table (``SqlDeliveryAttempts``) so that a message that kills the process is
    still dead-lettered; in memory when not given (tests, tools)."""
    metrics = metrics or ServiceMetrics()
    delivery = DeliveryPolicy(
        service=settings.service_name,
        step=step,
        retry=RetryPolicy(
            max_attempts=settings.kafka_max_attempts,
            backoff_initial_s=settings.kafka_retry_backoff_initial_s,
            backoff_max_s=settings.kafka_retry_backoff_max_s,
        ),
        metrics=metrics,
        watch=ConsumerWatch(stall_after_s=settings.liveness_stall_after_s, clock=clock),
        attempts=attempts or MemoryAttempts(),
        # A waiting delivery meets its outage again at least every backoff cap (plus the time
        # the failing call takes); one missed round is no reason to call the dependency back.
        outages=Outages(stale_after_s=2 * settings.kafka_retry_backoff_max_s + OUTAGE_GRACE_S),
    )
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"slidestream-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        linger_ms=PRODUCER_LINGER_MS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
            KafkaPrometheusMiddleware(
                registry=metrics.registry, app_name=f"slidestream-{settings.service_name}"
            ),
            delivery.middleware(),
        ),
    )
    publisher = EventPublisher(broker=broker, service=settings.service_name)
    delivery.sink = publisher
    return ServiceBus(
        broker=broker, publisher=publisher, settings=settings, metrics=metrics, delivery=delivery
    )

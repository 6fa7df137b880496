"""Prometheus metrics of a service, in a registry of its own (served at ``/metrics``).

FastStream's Prometheus middleware adds the per-message metrics (received, processed, duration,
in-flight, published); these are the ones it cannot know: retries and dead letters by reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


def _retries(registry: CollectorRegistry) -> Counter:
    return Counter(
        "slidestream_delivery_retries",
        "Messages redelivered after a failed attempt.",
        ["topic"],
        registry=registry,
    )


def _dead_letters(registry: CollectorRegistry) -> Counter:
    return Counter(
        "slidestream_dead_letters",
        "Messages written to the service's dead-letter topic.",
        ["topic", "reason"],
        registry=registry,
    )


def _ready(registry: CollectorRegistry) -> Gauge:
    return Gauge("slidestream_ready", "1 while the readiness checks pass.", registry=registry)


@dataclass(slots=True)
class ServiceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    retries: Counter = field(init=False)
    dead_letters: Counter = field(init=False)
    ready: Gauge = field(init=False)

    def __post_init__(self) -> None:
        self.retries = _retries(self.registry)
        self.dead_letters = _dead_letters(self.registry)
        self.ready = _ready(self.registry)

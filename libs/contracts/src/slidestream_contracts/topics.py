"""Every Kafka topic of slidestream, defined once.

Topic names carry a major version (``.v1``): fields may be added to a topic's event, never
renamed or removed. Partition counts bound how far a consumer group can scale (one consumer per
partition), so they are sized up front; operators may raise them per installation
(``KAFKA_TOPIC_PARTITIONS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_PARTITIONS = 12
"""Partitions per pipeline topic: the ceiling on replicas of any one service."""


class Topic(StrEnum):
    SLIDES_UPLOADED = "slides.uploaded.v1"
    SLIDES_REJECTED = "slides.rejected.v1"
    SLIDES_DEIDENTIFIED = "slides.deidentified.v1"
    SLIDES_CONVERTED = "slides.converted.v1"
    SLIDES_QC = "slides.qc.v1"
    SLIDES_INFERRED = "slides.inferred.v1"
    INFERENCE_REQUESTS = "inference.requests.v1"
    SLIDES_STATUS = "slides.status.v1"
    SLIDES_FIXES = "slides.fixes.v1"


SERVICES: tuple[str, ...] = ("upload", "deid", "convert", "qc", "inference", "search", "catalog")
"""Every consuming service; each owns one dead-letter topic."""


def dead_letter_topic(service: str) -> str:
    """``dlq.<service>.v1``: where a service parks messages it cannot process."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    return f"dlq.{service}.v1"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int


def all_topics(partitions: int = DEFAULT_PARTITIONS) -> list[TopicSpec]:
    """Every topic the platform needs, pipeline topics and one dead-letter topic per service.

    Dead-letter topics get a single partition: they are read by people and replay tools, not scaled.
    """
    pipeline = [TopicSpec(topic.value, partitions) for topic in Topic]
    dead_letters = [TopicSpec(dead_letter_topic(service), 1) for service in SERVICES]
    return pipeline + dead_letters

"""The event envelope: CloudEvents 1.0 in Kafka binary content mode plus W3C trace context.

CloudEvents Kafka protocol binding, section 3.2 (binary content mode): each context attribute is a
header named ``ce_<attribute>``; the event data is the record value and its media type is the
``content-type`` header. The record key is the slide id, so every event of a slide lands on one
partition, in order. The ``traceparent`` header (W3C Trace Context) is added by the OpenTelemetry
middleware at publish time, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from slidestream_contracts.events import DeadLetterRecordV1, SlideEvent

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
SOURCE_PREFIX = "/slidestream/"

REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source")


class EnvelopeError(ValueError):
    """Kafka headers do not form a valid CloudEvents binary-mode envelope."""


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    type: str
    source: str
    time: str | None
    subject: str | None
    specversion: str = SPEC_VERSION

    def to_headers(self) -> dict[str, str]:
        headers = {
            "ce_specversion": self.specversion,
            "ce_id": self.id,
            "ce_type": self.type,
            "ce_source": self.source,
            "content-type": CONTENT_TYPE,
        }
        if self.time is not None:
            headers["ce_time"] = self.time
        if self.subject is not None:
            headers["ce_subject"] = self.subject
        return headers

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> Envelope:
        missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if headers["ce_specversion"] != SPEC_VERSION:
            raise EnvelopeError(
                f"unsupported CloudEvents specversion {headers['ce_specversion']!r}"
            )
        return cls(
            id=headers["ce_id"],
            type=headers["ce_type"],
            source=headers["ce_source"],
            time=headers.get("ce_time"),
            subject=headers.get("ce_subject"),
        )


def source_for(service: str) -> str:
    return f"{SOURCE_PREFIX}{service}"


def envelope_for(event: SlideEvent, *, service: str, event_id: UUID | None = None) -> Envelope:
    """The envelope of a slide event published by ``service``."""
    occurred: datetime = event.occurred_at
    return Envelope(
        id=str(event_id or uuid4()),
        type=event.CE_TYPE,
        source=source_for(service),
        time=occurred.isoformat(),
        subject=str(event.slide_id),
    )


def dead_letter_envelope(record: DeadLetterRecordV1) -> Envelope:
    return Envelope(
        id=str(uuid4()),
        type=DeadLetterRecordV1.CE_TYPE,
        source=source_for(record.service),
        time=record.failed_at.isoformat(),
        subject=str(record.slide_id) if record.slide_id else None,
    )


def event_key(event: SlideEvent) -> bytes:
    """Kafka record key: the slide id, so a slide's events stay in order on one partition."""
    return str(event.slide_id).encode("ascii")

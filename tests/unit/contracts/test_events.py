from __future__ import annotations

import json
from uuid import uuid4

import pytest
from pydantic import ValidationError

from slidestream_contracts.events import (
    EVENT_BY_TOPIC,
    PIPELINE_EVENTS,
    DeidAuditSummary,
    ObjectRef,
    SlideDeidentifiedV1,
    SlideFormat,
    SlideUploadedV1,
)
from slidestream_contracts.topics import Topic, all_topics, dead_letter_topic

REF = ObjectRef(bucket="quarantine", key="acme/s/original", sha256="a" * 64, size_bytes=10)


def uploaded(**overrides: object) -> SlideUploadedV1:
    fields: dict[str, object] = {
        "slide_id": uuid4(),
        "tenant": "acme",
        "original": REF,
        "container_format": SlideFormat.TIFF,
        "upload_id": "u1",
    }
    fields.update(overrides)
    return SlideUploadedV1.model_validate(fields)


def test_every_pipeline_topic_has_exactly_one_event_model() -> None:
    assert set(EVENT_BY_TOPIC) == {topic.value for topic in Topic}
    assert len(PIPELINE_EVENTS) == len(Topic)
    assert SlideUploadedV1.TOPIC is Topic.SLIDES_UPLOADED


def test_events_are_frozen() -> None:
    event = uploaded()
    with pytest.raises(ValidationError):
        event.tenant = "other"  # type: ignore[misc]


def test_unknown_fields_are_rejected_not_dropped() -> None:
    body = json.loads(uploaded().model_dump_json())
    body["patient_name"] = "Jane Doe"
    with pytest.raises(ValidationError, match="patient_name"):
        SlideUploadedV1.model_validate_json(json.dumps(body))


def test_json_round_trip_is_lossless() -> None:
    event = uploaded(species="human", organ="colon")
    assert SlideUploadedV1.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", "Acme Corp"),
        ("tenant", "../etc"),
        ("original", {"bucket": "q", "key": "k", "sha256": "xyz", "size_bytes": 1}),
        ("original", {"bucket": "quarantine", "key": "/abs", "sha256": "a" * 64, "size_bytes": 1}),
        ("original", {"bucket": "quarantine", "key": "k", "sha256": "a" * 64, "size_bytes": -1}),
    ],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        uploaded(**{field: value})


def test_occurred_at_must_carry_a_timezone() -> None:
    with pytest.raises(ValidationError):
        uploaded(occurred_at="2026-01-01T00:00:00")


def test_deidentified_event_requires_an_artefact_and_an_audit() -> None:
    with pytest.raises(ValidationError):
        SlideDeidentifiedV1(
            slide_id=uuid4(),
            tenant="acme",
            artefacts=(),
            format="svs",
            width_px=1,
            height_px=1,
            level_count=1,
            audit=DeidAuditSummary(software_version="1", key_version=1),
        )


def test_events_carry_references_not_bytes() -> None:
    for event in PIPELINE_EVENTS:
        schema = json.dumps(event.model_json_schema())
        assert '"format": "binary"' not in schema
        assert '"format": "base64"' not in schema


def test_topics_include_one_dead_letter_topic_per_service() -> None:
    names = {spec.name for spec in all_topics(partitions=6)}
    assert dead_letter_topic("deid") == "dlq.deid.v1"
    assert "dlq.deid.v1" in names
    assert {spec.partitions for spec in all_topics(6) if spec.name.startswith("slides.")} == {6}
    with pytest.raises(ValueError, match="unknown service"):
        dead_letter_topic("nope")

"""The dead-letter tool's rules without Kafka: ids, filters, counts per reason, and the message a
replay sends (the original bytes, key and headers, marked with the dead letter it replays)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from slidestream_catalog.dead_letters import (
    REPLAY_HEADER,
    DeadLetter,
    DeadLetterError,
    by_reason,
    original_message,
    parse_id,
    select,
)
from slidestream_contracts.events import DeadLetterRecordV1

SLIDE = uuid4()
TRACEPARENT = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


def letter(offset: int, reason: str = "corrupt-slide", *, hour: int = 10) -> DeadLetter:
    record = DeadLetterRecordV1(
        service="convert",
        original_topic="slides.deidentified.v1",
        original_partition=3,
        original_offset=40 + offset,
        original_key=str(SLIDE),
        original_headers={"traceparent": TRACEPARENT, "ce_id": "e-1"},
        payload_base64=base64.b64encode(b'{"not": "json\xff').decode(),
        error_class="CorruptSlideError",
        error_reason=reason,
        error_message="level 1 tile 3 does not decode",
        attempts=1,
        slide_id=SLIDE,
        failed_at=datetime(2026, 12, 7, hour, tzinfo=UTC),
    )
    return DeadLetter("convert", 0, offset, record)


def test_ids_name_service_partition_and_offset() -> None:
    assert letter(7).id == "convert/0/7"
    assert parse_id("convert/0/7") == ("convert", 0, 7)
    for wrong in ("convert/0", "nobody/0/1", "convert/x/1", ""):
        with pytest.raises(DeadLetterError, match="not a dead letter id"):
            parse_id(wrong)


def test_filters_and_exact_ids() -> None:
    letters = [letter(1), letter(2, "missing-pixel-spacing"), letter(3)]
    assert [x.id for x in select(letters, reason="corrupt-slide")] == ["convert/0/1", "convert/0/3"]
    assert select(letters, slide_id=str(uuid4())) == []
    assert [x.id for x in select(letters, ids=["convert/0/2"])] == ["convert/0/2"]
    with pytest.raises(DeadLetterError, match="no such dead letter: convert/0/9"):
        select(letters, ids=["convert/0/9"])


def test_counts_per_reason_since_when() -> None:
    letters = [letter(1, hour=9), letter(2, "missing-pixel-spacing"), letter(3, hour=11)]
    [corrupt, spacing] = by_reason(letters)
    assert (corrupt.reason, corrupt.count) == ("corrupt-slide", 2)
    assert (corrupt.since, corrupt.latest) == (
        datetime(2026, 12, 7, 9, tzinfo=UTC),
        datetime(2026, 12, 7, 11, tzinfo=UTC),
    )
    assert (spacing.reason, spacing.count) == ("missing-pixel-spacing", 1)


def test_a_replay_sends_the_original_bytes_key_and_trace() -> None:
    value, key, headers = original_message(letter(5))
    assert value == b'{"not": "json\xff'  # a poison message goes back byte for byte
    assert key == str(SLIDE).encode()
    assert ("traceparent", TRACEPARENT.encode()) in headers
    assert headers[-1] == (REPLAY_HEADER, b"convert/0/5")


def test_an_undecodable_dead_letter_cannot_be_replayed() -> None:
    broken = DeadLetter("qc", 1, 2, None, "not a dead-letter record")
    assert broken.summary()["reason"] == "undecodable-dead-letter"
    with pytest.raises(DeadLetterError, match="holds no original"):
        original_message(broken)

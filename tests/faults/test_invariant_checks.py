"""The fault suite's judges on hand-made logs: each invariant's check must catch its violation
(a check that never fails would make every scenario pass). No servers: part of ``make test``."""

from __future__ import annotations

import json
from typing import Any

from slidestream_contracts.topics import Topic
from tests.support.faults.ledger import INJECTED_HEADER, Ledger, LogRecord, is_injected
from tests.support.faults.objects import object_refs
from tests.support.faults.scenario import QC_REACHED, assess

SLIDE, OTHER = "slide-1", "slide-2"
UPLOADED, DEIDENTIFIED = Topic.SLIDES_UPLOADED.value, Topic.SLIDES_DEIDENTIFIED.value
CONVERTED, QC = Topic.SLIDES_CONVERTED.value, Topic.SLIDES_QC.value


def record(topic: str, key: str, offset: int = 0, *, partition: int = 0, **value: Any) -> LogRecord:
    return LogRecord(topic, partition, offset, key, 1000.0 + offset, json.dumps(value).encode())


def through_qc(key: str, offset: int = 0) -> list[LogRecord]:
    return [
        record(UPLOADED, key, offset),
        record(DEIDENTIFIED, key, offset),
        record(CONVERTED, key, offset),
        record(QC, key, offset, verdict="pass"),
    ]


def committed_past_everything() -> dict[str, dict[tuple[str, int], int]]:
    return {
        "deid": {(UPLOADED, 0): 10},
        "convert": {(DEIDENTIFIED, 0): 10},
        "qc": {(CONVERTED, 0): 10},
    }


def test_a_slide_that_went_all_the_way_once_passes() -> None:
    ledger = Ledger(through_qc(SLIDE), committed_past_everything())
    assert assess({SLIDE: QC_REACHED}, ledger).failures == []


def test_a_slide_without_a_terminal_state_is_lost() -> None:
    ledger = Ledger(through_qc(SLIDE)[:3])
    verdict = assess({SLIDE: QC_REACHED}, ledger)
    assert verdict.lost == 1
    assert "no terminal state" in verdict.failures[0]


def test_a_decision_published_twice_is_a_duplicate() -> None:
    ledger = Ledger([*through_qc(SLIDE), record(CONVERTED, SLIDE, 1)])
    verdict = assess({SLIDE: QC_REACHED}, ledger)
    assert verdict.duplicates == 1
    assert verdict.failures == [f"{SLIDE}: published more than once {{'{CONVERTED}': 2}}"]


def test_a_status_sent_again_is_no_duplicate() -> None:
    statuses = [record(Topic.SLIDES_STATUS.value, SLIDE, n, state="converted") for n in (0, 1)]
    ledger = Ledger([*through_qc(SLIDE), *statuses])
    assert assess({SLIDE: QC_REACHED}, ledger).duplicates == 0


def test_two_different_ends_are_refused() -> None:
    ledger = Ledger([*through_qc(SLIDE), record("dlq.qc.v1", SLIDE)])
    failures = assess({SLIDE: QC_REACHED}, ledger).failures
    assert any("several terminal states" in f for f in failures)
    assert any("not a poison message" in f for f in failures)


def test_the_wrong_end_is_refused() -> None:
    ledger = Ledger([record(UPLOADED, SLIDE), record("dlq.deid.v1", SLIDE)])
    assert assess({SLIDE: QC_REACHED}, ledger).failures == [
        f"{SLIDE}: ended failed:deid, expected qc:",
        f"{SLIDE}: dead-lettered, but not a poison message",
    ]


def test_an_offset_committed_without_its_decision_is_acknowledged_work_lost() -> None:
    # deid committed past the slide's upload, yet neither deidentified, rejected nor
    # dead-lettered it: the message was acknowledged and its work is nowhere.
    ledger = Ledger([record(UPLOADED, SLIDE, 3), *through_qc(OTHER)], {"deid": {(UPLOADED, 0): 4}})
    verdict = assess({SLIDE: QC_REACHED, OTHER: QC_REACHED}, ledger)
    assert "acknowledged without a decision: deid:slides.uploaded.v1/0@3" in verdict.failures
    assert verdict.lost == 2  # no terminal state, and the acknowledged record


def test_an_uncommitted_record_is_not_acknowledged() -> None:
    ledger = Ledger([record(UPLOADED, SLIDE, 3)], {"deid": {(UPLOADED, 0): 3}})
    assert ledger.acknowledged_undecided([SLIDE]) == []


def test_another_steps_rejection_does_not_decide_for_deid() -> None:
    ledger = Ledger(
        [record(UPLOADED, SLIDE, 3), record(Topic.SLIDES_REJECTED.value, SLIDE, step="upload")],
        {"deid": {(UPLOADED, 0): 4}},
    )
    assert ledger.acknowledged_undecided([SLIDE]) == ["deid:slides.uploaded.v1/0@3"]


def test_the_suites_own_poison_is_no_decision_but_its_dead_letter_is() -> None:
    mark = [(INJECTED_HEADER, b"poison")]
    assert is_injected(UPLOADED, mark)
    assert not is_injected("dlq.deid.v1", mark)  # the dead letter keeps its original's headers
    poison = LogRecord(UPLOADED, 0, 0, SLIDE, 1.0, b"\xff not json", injected=True)
    dead_letter = record("dlq.deid.v1", SLIDE)
    ledger = Ledger([poison, dead_letter], {"deid": {(UPLOADED, 0): 1}})
    verdict = assess({SLIDE: "failed:deid"}, ledger)
    assert verdict.failures == []
    assert ledger.decision_counts(SLIDE) == {"dlq.deid.v1": 1}


def test_object_references_are_found_at_any_depth() -> None:
    ref = {"bucket": "converted", "key": "t/s/a", "sha256": "0" * 64, "size_bytes": 1}
    event = {"tiff": ref, "dicom": [ref, ref], "levels": [{"index": 0}], "report": None}
    assert list(object_refs(event)) == [ref, ref, ref]

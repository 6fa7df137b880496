from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from slidestream_contracts.lifecycle import StatusChange, TenantMismatchError, apply
from slidestream_contracts.states import SlideState, Step

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SLIDE = uuid4()


def change(state: SlideState, step: Step, minutes: int, tenant: str = "acme") -> StatusChange:
    return StatusChange(
        slide_id=SLIDE,
        tenant=tenant,
        state=state,
        step=step,
        reason=None,
        detail="",
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def test_first_event_creates_the_record() -> None:
    record = apply(None, change(SlideState.UPLOADED, Step.UPLOAD, 0))
    assert record.state is SlideState.UPLOADED
    assert record.transitions == 1


def test_redelivery_changes_nothing() -> None:
    first = apply(None, change(SlideState.UPLOADED, Step.UPLOAD, 0))
    assert apply(first, change(SlideState.UPLOADED, Step.UPLOAD, 0)) is first


def test_an_older_event_never_overwrites_a_newer_one() -> None:
    record = apply(None, change(SlideState.DEIDENTIFIED, Step.DEID, 5))
    assert apply(record, change(SlideState.UPLOADED, Step.UPLOAD, 0)) is record


def test_progress_moves_forward() -> None:
    record = apply(None, change(SlideState.UPLOADED, Step.UPLOAD, 0))
    record = apply(record, change(SlideState.DEIDENTIFIED, Step.DEID, 1))
    assert record.state is SlideState.DEIDENTIFIED
    assert record.transitions == 2


def test_terminal_states_are_final() -> None:
    record = apply(None, change(SlideState.REJECTED, Step.DEID, 1))
    assert apply(record, change(SlideState.DEIDENTIFIED, Step.DEID, 2)) is record


def test_success_after_a_replayed_dead_letter_supersedes_the_failure() -> None:
    failed = apply(None, change(SlideState.FAILED_CONVERT, Step.CONVERT, 1))
    recovered = apply(failed, change(SlideState.CONVERTED, Step.CONVERT, 9))
    assert recovered.state is SlideState.CONVERTED
    # ...but another step cannot resurrect it.
    assert apply(failed, change(SlideState.QC_PASSED, Step.QC, 9)) is failed


def test_events_of_another_tenant_are_refused() -> None:
    record = apply(None, change(SlideState.UPLOADED, Step.UPLOAD, 0))
    with pytest.raises(TenantMismatchError):
        apply(record, change(SlideState.DEIDENTIFIED, Step.DEID, 1, tenant="other"))

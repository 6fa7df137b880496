"""The slide lifecycle projection: how a recorded state changes when a status event arrives.

Events of one slide arrive in order on one partition, but at-least-once delivery means an event can
arrive twice, and a replay from the topic's start re-applies history. The projection is therefore
idempotent and monotonic:

* the same event applied twice leaves one row, unchanged (keyed by slide id, compared by content);
* an event older than the recorded one (``occurred_at``) never overwrites it;
* a terminal state (``rejected``, ``qc_failed``, ``failed:<step>``, ``indexed``) is final, except
  that a later *success* of the same step supersedes ``failed:<step>`` (an operator replayed the
  dead letter and the step then succeeded).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from slidestream_contracts.states import SlideState, Step


@dataclass(frozen=True, slots=True)
class SlideRecord:
    slide_id: UUID
    tenant: str
    state: SlideState
    step: Step
    reason: str | None
    detail: str
    updated_at: datetime
    transitions: int = 1


@dataclass(frozen=True, slots=True)
class StatusChange:
    slide_id: UUID
    tenant: str
    state: SlideState
    step: Step
    reason: str | None
    detail: str
    occurred_at: datetime


class TenantMismatchError(ValueError):
    """A status event named another tenant than the slide's: never merge two tenants' data."""


def _same(record: SlideRecord, change: StatusChange) -> bool:
    return (
        record.state is change.state
        and record.step is change.step
        and record.reason == change.reason
        and record.updated_at == change.occurred_at
    )


def _replay_of_failed_step_succeeded(record: SlideRecord, change: StatusChange) -> bool:
    return (
        record.state is SlideState.failed(record.step)
        and change.step is record.step
        and not (change.state.value.startswith("failed:") or change.state is SlideState.REJECTED)
    )


def apply(record: SlideRecord | None, change: StatusChange) -> SlideRecord:
    """The record after ``change``; returns ``record`` itself when nothing changes."""
    if record is None:
        return SlideRecord(
            slide_id=change.slide_id,
            tenant=change.tenant,
            state=change.state,
            step=change.step,
            reason=change.reason,
            detail=change.detail,
            updated_at=change.occurred_at,
        )
    if record.tenant != change.tenant:
        raise TenantMismatchError(
            f"slide {change.slide_id} belongs to another tenant than the status event names"
        )
    if _same(record, change) or change.occurred_at < record.updated_at:
        return record
    if record.state.is_terminal and not _replay_of_failed_step_succeeded(record, change):
        return record
    return replace(
        record,
        state=change.state,
        step=change.step,
        reason=change.reason,
        detail=change.detail,
        updated_at=change.occurred_at,
        transitions=record.transitions + 1,
    )

"""From a QC verdict to the slide's state: failing slides stop here, warned ones continue."""

from __future__ import annotations

from uuid import UUID

from slidestream_contracts.states import SlideState

EVENT_ID_NAMESPACE = UUID("a3d0c9b4-5e27-4f8e-b1c6-0f9e2d7a4c51")
"""Namespace of qc's deterministic event ids: UUIDv5 of slide id, input digest and topic."""

STATE_BY_VERDICT = {
    "pass": SlideState.QC_PASSED,
    "warn": SlideState.QC_WARNED,
    "fail": SlideState.QC_FAILED,
}
MAX_DETAIL_CHARS = 2000
"""SlideStatusV1.detail's limit."""


def state_for(verdict: str) -> SlideState:
    return STATE_BY_VERDICT[verdict]


def status_detail(reasons: tuple[str, ...]) -> str:
    """The reasons, joined for people (the catalogue shows them next to the state)."""
    detail = "; ".join(reasons)
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 1] + "…"

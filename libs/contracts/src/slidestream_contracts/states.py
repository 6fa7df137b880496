"""Slide lifecycle states and pipeline stages, defined once.

A slide moves ``uploaded → deidentified → converted → qc_passed|qc_warned|qc_failed → inferred →
indexed``; it may end early as ``rejected`` (the platform refused the input, e.g. residual PHI) or
``failed:<step>`` (a step could not process it after its retries; the message is in that step's
dead-letter topic).
"""

from __future__ import annotations

from enum import StrEnum


class Step(StrEnum):
    """A service that moves a slide forward; used in ``failed:<step>`` and rejection events."""

    UPLOAD = "upload"
    DEID = "deid"
    CONVERT = "convert"
    QC = "qc"
    INFERENCE = "inference"
    SEARCH = "search"


class SlideState(StrEnum):
    UPLOADED = "uploaded"
    REJECTED = "rejected"
    DEIDENTIFIED = "deidentified"
    CONVERTED = "converted"
    QC_PASSED = "qc_passed"
    QC_WARNED = "qc_warned"
    QC_FAILED = "qc_failed"
    INFERRED = "inferred"
    INDEXED = "indexed"
    FAILED_UPLOAD = "failed:upload"
    FAILED_DEID = "failed:deid"
    FAILED_CONVERT = "failed:convert"
    FAILED_QC = "failed:qc"
    FAILED_INFERENCE = "failed:inference"
    FAILED_SEARCH = "failed:search"

    @classmethod
    def failed(cls, step: Step) -> SlideState:
        return cls(f"failed:{step.value}")

    @property
    def is_terminal(self) -> bool:
        """No further pipeline stage will run for a slide in this state."""
        return self in _TERMINAL


class Stage(StrEnum):
    """A completed pipeline stage: what ``slidestream status --wait STAGE`` waits for."""

    UPLOADED = "uploaded"
    DEIDENTIFIED = "deidentified"
    CONVERTED = "converted"
    QC = "qc"
    INFERRED = "inferred"
    INDEXED = "indexed"


_STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)

_TERMINAL = frozenset(
    {
        SlideState.REJECTED,
        SlideState.QC_FAILED,
        SlideState.INDEXED,
        *(s for s in SlideState if s.value.startswith("failed:")),
    }
)

#: The last stage each state has completed (``None``: not even the upload completed).
_COMPLETED_BY_STATE: dict[SlideState, Stage | None] = {
    SlideState.UPLOADED: Stage.UPLOADED,
    SlideState.DEIDENTIFIED: Stage.DEIDENTIFIED,
    SlideState.CONVERTED: Stage.CONVERTED,
    SlideState.QC_PASSED: Stage.QC,
    SlideState.QC_WARNED: Stage.QC,
    SlideState.QC_FAILED: Stage.QC,
    SlideState.INFERRED: Stage.INFERRED,
    SlideState.INDEXED: Stage.INDEXED,
}

#: For failures and rejections: the stage that did not complete.
_STEP_STAGE: dict[Step, Stage | None] = {
    Step.UPLOAD: None,
    Step.DEID: Stage.UPLOADED,
    Step.CONVERT: Stage.DEIDENTIFIED,
    Step.QC: Stage.CONVERTED,
    Step.INFERENCE: Stage.QC,
    Step.SEARCH: Stage.INFERRED,
}


def stage_rank(stage: Stage) -> int:
    return _STAGE_ORDER.index(stage)


def last_completed_stage(state: SlideState, *, failed_step: Step | None = None) -> Stage | None:
    """The furthest pipeline stage a slide in ``state`` has completed.

    For ``rejected`` the step that rejected must be given; for ``failed:<step>`` it is read from the
    state itself.
    """
    if state in _COMPLETED_BY_STATE:
        return _COMPLETED_BY_STATE[state]
    if state is SlideState.REJECTED:
        return _STEP_STAGE[failed_step] if failed_step is not None else None
    step = Step(state.value.removeprefix("failed:"))
    return _STEP_STAGE[step]


class WaitOutcome(StrEnum):
    REACHED = "reached"
    """The slide completed the stage (whatever the verdict, e.g. ``qc_failed`` completed ``qc``)."""
    STOPPED = "stopped"
    """The slide was rejected or failed before completing the stage; it never will."""
    PENDING = "pending"
    """Still on its way."""


def wait_outcome(
    state: SlideState, target: Stage, *, failed_step: Step | None = None
) -> WaitOutcome:
    completed = last_completed_stage(state, failed_step=failed_step)
    if completed is not None and stage_rank(completed) >= stage_rank(target):
        return WaitOutcome.REACHED
    if state.is_terminal:
        return WaitOutcome.STOPPED
    return WaitOutcome.PENDING

from __future__ import annotations

import pytest

from slidestream_contracts.states import SlideState, Stage, Step, WaitOutcome, wait_outcome


@pytest.mark.parametrize(
    ("state", "target", "failed_step", "expected"),
    [
        (SlideState.UPLOADED, Stage.UPLOADED, None, WaitOutcome.REACHED),
        (SlideState.UPLOADED, Stage.DEIDENTIFIED, None, WaitOutcome.PENDING),
        (SlideState.QC_FAILED, Stage.QC, None, WaitOutcome.REACHED),
        (SlideState.QC_FAILED, Stage.INFERRED, None, WaitOutcome.STOPPED),
        (SlideState.QC_WARNED, Stage.INFERRED, None, WaitOutcome.PENDING),
        (SlideState.FAILED_DEID, Stage.UPLOADED, None, WaitOutcome.REACHED),
        (SlideState.FAILED_DEID, Stage.DEIDENTIFIED, None, WaitOutcome.STOPPED),
        (SlideState.REJECTED, Stage.UPLOADED, Step.UPLOAD, WaitOutcome.STOPPED),
        (SlideState.REJECTED, Stage.UPLOADED, Step.DEID, WaitOutcome.REACHED),
        (SlideState.REJECTED, Stage.DEIDENTIFIED, Step.DEID, WaitOutcome.STOPPED),
        (SlideState.INDEXED, Stage.INDEXED, None, WaitOutcome.REACHED),
    ],
)
def test_wait_outcome(
    state: SlideState, target: Stage, failed_step: Step | None, expected: WaitOutcome
) -> None:
    assert wait_outcome(state, target, failed_step=failed_step) is expected


def test_every_step_has_a_failed_state() -> None:
    for step in Step:
        assert SlideState.failed(step).value == f"failed:{step.value}"
        assert SlideState.failed(step).is_terminal

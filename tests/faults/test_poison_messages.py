"""Scenario (d): poison messages mixed into a batch of good slides.

Records no retry can make right — not JSON, a field v1 lacks, a missing original, an object of
another slide, a missing artefact — are published straight onto the pipeline's topics while the
batch uploads, with a text file named like a slide and a truncated slide among the uploads.
Every good slide must reach QC untouched; each poison message must be dead-lettered by the
step that consumes it, once, and nothing else dead-lettered.
"""

from __future__ import annotations

import time

import pytest

from tests.support.faults.batch import make_slides
from tests.support.faults.poison import bad_files, poison_messages, publish
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = [pytest.mark.faults, pytest.mark.quick]

GOOD_SLIDES = 8
UPLOAD_TIMEOUT_S = 300.0
END_TIMEOUT_S = 420.0


@pytest.mark.timeout(900)
def test_poison_is_dead_lettered_alone_and_good_slides_pass(stack: FaultStack) -> None:
    run = Run(stack, "poison")
    result = ScenarioResult(
        scenario="d-poison",
        title="Poison messages mixed in",
        injected=(
            "6 poison records published onto slides.uploaded/deidentified/converted between "
            "the uploads (not JSON, unknown field, missing original, another slide's object, "
            "missing artefact), plus a text file and a truncated slide uploaded"
        ),
        checked=(
            "good slides reach QC; each poison record dead-lettered once by its consumer; "
            "the text file rejected; no other dead letter"
        ),
    )
    reference = make_slides(stack.run_dir / "slides" / "reference", 1, first_seed=999)[0]
    bad = bad_files(stack.run_dir / "slides" / "poison-bad", reference)
    batch = run.upload(GOOD_SLIDES, first_seed=100, extra=list(bad.values()))
    poison = poison_messages(run.tenant)
    # Half while the first uploads are verified, half once the batch is flowing.
    deadline = time.monotonic() + UPLOAD_TIMEOUT_S
    while batch.acknowledged() < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    publish(stack.servers.bootstrap, poison[::2])
    while batch.acknowledged() < GOOD_SLIDES and time.monotonic() < deadline:
        time.sleep(0.5)
    publish(stack.servers.bootstrap, poison[1::2])
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S, **{path.stem: state for state, path in bad.items()})
    run.expected.update({message.slide_id: message.expected for message in poison})
    result.in_flight = run.in_flight()
    result.notes.append(", ".join(f"{m.name} → {m.expected}" for m in poison))

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=None)

    assert not result.failures, "\n".join(result.failures)

"""Scenario (b): services killed with SIGKILL at random moments of a batch, then restarted.

While a batch uploads and travels, a service picked at random (upload, deid, convert or qc) is
killed — no shutdown, no offset commit, no finally block, as the OOM killer or a lost node does
it — at a random point of the batch's progress, and started again after a random pause (in the
background: the next kill does not wait for it). Whatever it was doing must be redone or found
done: each slide ends once, each decision is in the log once, and no input was acknowledged
without its decision.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import pytest

from tests.support.faults.batch import BatchUpload
from tests.support.faults.ledger import DECIDED_BY
from tests.support.faults.pipeline import SERVICES
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = [pytest.mark.faults, pytest.mark.quick]

SLIDES = 16
KILLS = 4
"""Below KAFKA_MAX_ATTEMPTS (5): a message hit by every kill is still not a crash loop."""
PROGRESS = (0.0, 0.7)
"""Each kill comes when a random share of the batch in this range has ended."""
DOWN_S = (0.0, 3.0)
POLL_S = 0.5
UPLOAD_TIMEOUT_S = 420.0
END_TIMEOUT_S = 420.0


@dataclass(frozen=True, slots=True)
class Kill:
    service: str
    after_ended: int
    """Slides of the batch that have ended when it comes."""
    down_s: float


def plan(rng: random.Random) -> list[Kill]:
    shares = sorted(rng.uniform(*PROGRESS) for _ in range(KILLS))
    return [
        Kill(rng.choice(SERVICES), int(share * SLIDES), rng.uniform(*DOWN_S)) for share in shares
    ]


@dataclass
class Restart:
    kill: Kill
    started_at: float = 0.0
    ready_s: float = 0.0
    thread: threading.Thread | None = None


def _kill_and_restart(stack: FaultStack, kill: Kill) -> Restart:
    restart = Restart(kill)
    stack.pipeline.kill(kill.service)

    def back() -> None:
        time.sleep(kill.down_s)
        restart.started_at = time.time()
        restart.ready_s = stack.pipeline.restart(kill.service)

    restart.thread = threading.Thread(target=back, name=f"restart-{kill.service}")
    restart.thread.start()
    return restart


def _inject(stack: FaultStack, run: Run, batch: BatchUpload, kills: list[Kill]) -> list[Restart]:
    restarts: list[Restart] = []
    deadline = time.monotonic() + END_TIMEOUT_S
    for kill in kills:
        while run.ended(batch) < kill.after_ended and time.monotonic() < deadline:
            time.sleep(POLL_S)
        for earlier in restarts:  # a service is killed again only once it is back
            if earlier.kill.service == kill.service and earlier.thread is not None:
                earlier.thread.join()
        run.in_flight_max = max(run.in_flight_max, run.in_flight(batch))
        restarts.append(_kill_and_restart(stack, kill))
    for restart in restarts:
        assert restart.thread is not None
        restart.thread.join()
    return restarts


@pytest.mark.timeout(1200)
def test_services_killed_at_random_lose_and_repeat_nothing(
    stack: FaultStack, faults_seed: int
) -> None:
    kills = plan(random.Random(faults_seed))
    run = Run(stack, "kills")
    result = ScenarioResult(
        scenario="b-kill-9",
        title="Services killed (SIGKILL) at random moments",
        injected=f"{KILLS} SIGKILLs of a random service (upload, deid, convert, qc) at random "
        f"points of the batch (0-{PROGRESS[1]:.0%} of it ended), each restarted after "
        f"{DOWN_S[0]:.0f}-{DOWN_S[1]:.0f} s",
        checked="every slide reaches QC; invariants 1-4; recovery: a restart to the killed "
        "step's next decision",
    )
    batch = run.upload(SLIDES, first_seed=200)
    restarts = _inject(stack, run, batch, kills)
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)
    result.in_flight = run.in_flight_max
    result.notes += [
        f"{r.kill.service} killed once {r.kill.after_ended} of {SLIDES} slides had ended, down "
        f"{r.kill.down_s:.1f} s, ready {r.ready_s:.1f} s after its restart"
        for r in restarts
    ]
    retried = sum(1 for r in batch.results if r.attempts > 1)
    result.notes.append(f"seed {faults_seed}; uploads the client ran again: {retried}")

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=None)
    # Recovery: from a restart to the killed step's next decision (none when it had no work
    # left); drain: from the last restart to the batch's end.
    ids = list(run.expected)
    recoveries = [
        resumed - r.started_at
        for r in restarts
        if (resumed := ledger.first_decision_after(ids, r.started_at, DECIDED_BY[r.kill.service]))
    ]
    result.recovery_s = round(max(recoveries), 1) if recoveries else None
    last = ledger.last_terminal_time(ids)
    last_restart = max(r.started_at for r in restarts)
    result.drain_s = round(max(0.0, last - last_restart), 1) if last else None
    result.save()

    assert result.in_flight > 0, "every kill came after the batch had ended"
    assert not result.failures, "\n".join(result.failures)

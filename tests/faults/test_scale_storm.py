"""Scenario (h): a scale storm — replicas of deid started and stopped every few seconds while a
batch flows.

Besides the suite's deid process, extra deid replicas join and leave its consumer group at
random every few seconds, as an autoscaler flapping or a rolling restart gone wild does: a new
one is started (it joins, the group rebalances), or a running one is stopped, mostly gracefully
(SIGTERM: FastStream stops consuming, the handler in hand finishes, the member leaves) and
sometimes with SIGKILL (no leave: the group waits the session timeout out). Every rebalance
moves partitions while messages are in hand; none may be lost (acknowledged undecided, or never
ended) and none announced twice.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.support.faults.batch import BatchUpload
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = pytest.mark.faults

SLIDES = 24
SERVICE = "deid"
MAX_REPLICAS = 3
"""Extra replicas running at once, at most (the machine running the suite is small)."""
WARM_REPLICAS = 2
"""Started (and ready) before the batch: the storm has members to stop from its first move."""
PAUSE_S = (2.0, 4.0)
"""Between two moves of the storm; a start does not wait for the replica (a pod does not)."""
KILL_SHARE = 0.35
"""Of the stops, the share done with SIGKILL instead of SIGTERM."""
MAX_MOVES = 40
MIN_STOPS = 3
FIRST_ACKS = 1
UPLOAD_TIMEOUT_S = 420.0
END_TIMEOUT_S = 600.0


@dataclass
class Storm:
    """What the storm did, in order."""

    moves: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    stops: int = 0
    kills: int = 0
    last_at: float = 0.0

    def counts(self) -> str:
        kinds = Counter(move.split(" ", 1)[0] for move in self.moves)
        return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))


def _move(stack: FaultStack, storm: Storm, rng: random.Random) -> None:
    """One move of the storm: start a replica, or stop a ready one (SIGTERM or SIGKILL); none
    while every replica there is room for is still starting."""
    ready = [name for name in storm.live if stack.pipeline.replicas[name].ready()]
    room = len(storm.live) < MAX_REPLICAS
    if room and (not ready or rng.random() < 0.5):
        replica = stack.pipeline.start_replica(SERVICE, wait=False)
        storm.live.append(replica.name)
        storm.moves.append(f"start {replica.name}")
    elif ready:
        name = rng.choice(ready)
        storm.live.remove(name)
        # At least one SIGKILL per storm: the second stop is one if none came before.
        kill = rng.random() < KILL_SHARE or (storm.stops == 1 and not storm.kills)
        stack.pipeline.stop_replica(name, kill=kill)
        storm.moves.append(f"{'sigkill' if kill else 'sigterm'} {name}")
        storm.stops += 1
        storm.kills += int(kill)
    else:
        return
    storm.last_at = time.time()


def _storm(stack: FaultStack, run: Run, batch: BatchUpload, rng: random.Random) -> Storm:
    """Move until the batch has ended (after at least ``MIN_STOPS`` stops) or the storm's moves
    are spent."""
    storm = Storm(live=[name for name in stack.pipeline.replicas if name.startswith(SERVICE)])
    deadline = time.monotonic() + END_TIMEOUT_S
    while len(storm.moves) < MAX_MOVES and time.monotonic() < deadline:
        if storm.stops >= MIN_STOPS and run.ended(batch) >= len(batch.files):
            break
        _move(stack, storm, rng)
        time.sleep(rng.uniform(*PAUSE_S))
    return storm


def _warm_up(stack: FaultStack) -> float:
    """Start ``WARM_REPLICAS`` replicas together; seconds until all were ready."""
    started = time.monotonic()
    names = [stack.pipeline.start_replica(SERVICE, wait=False).name for _ in range(WARM_REPLICAS)]
    for name in names:
        stack.pipeline.wait_ready(name)
    return time.monotonic() - started


@pytest.mark.timeout(1500)
def test_a_scale_storm_loses_and_repeats_nothing(stack: FaultStack, faults_seed: int) -> None:
    rng = random.Random(faults_seed)
    run = Run(stack, "scale-storm")
    result = ScenarioResult(
        scenario="h-scale-storm",
        title="Replicas started and stopped every few seconds",
        injected=f"{WARM_REPLICAS} extra {SERVICE} replicas, then (up to {MAX_REPLICAS} at "
        f"once) one started or a ready one stopped every {PAUSE_S[0]:.0f}-{PAUSE_S[1]:.0f} s "
        f"(stops: SIGTERM, {KILL_SHARE:.0%} SIGKILL, at least one) while a batch of {SLIDES} flows",
        checked="every slide reaches QC; invariants 1-4 across the rebalances; drain: last "
        "move to the batch's end",
    )
    warm_s = _warm_up(stack)
    batch = run.upload(SLIDES, first_seed=800)
    deadline = time.monotonic() + UPLOAD_TIMEOUT_S
    while batch.acknowledged() < FIRST_ACKS and time.monotonic() < deadline:
        time.sleep(0.5)

    result.in_flight = run.in_flight(batch)
    storm = _storm(stack, run, batch, rng)
    members = stack.servers.group_members(SERVICE)
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=None)
    ids = list(run.expected)
    last = ledger.last_terminal_time(ids)
    result.drain_s = None if last is None else round(max(0.0, last - storm.last_at), 1)
    result.notes += [
        f"seed {faults_seed}; {len(storm.moves)} moves: {storm.counts()}; the first "
        f"{WARM_REPLICAS} replicas were ready {warm_s:.0f} s after their start",
        "moves: " + "; ".join(storm.moves),
        f"{SERVICE} group after the storm: {len(members)} member(s), "
        f"{len(storm.live)} extra replica(s) left running",
    ]
    result.save()

    assert result.in_flight > 0, "the storm began after the batch had ended"
    assert storm.stops >= MIN_STOPS, "the storm stopped fewer replicas than it must"
    assert storm.kills > 0, "the storm killed no replica"
    assert not result.failures, "\n".join(result.failures)

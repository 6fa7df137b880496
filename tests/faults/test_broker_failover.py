"""Scenario (c): the broker leading most of the pipeline's partitions killed while the batch
is being produced.

With replication factor 3, ``min.insync.replicas`` 2 and producers on ``acks=all`` with
idempotence, a SIGKILLed leader must cost neither an acknowledged record (it is on another
in-sync replica) nor a duplicate (the new leader knows the producers' sequence numbers).
The broker stays down a while — the batch goes on with two — and then rejoins.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from slidestream_contracts.topics import Topic
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = pytest.mark.faults

SLIDES = 10
DOWN_S = 30.0
PRODUCED_TOPICS = [
    Topic.SLIDES_UPLOADED.value,
    Topic.SLIDES_DEIDENTIFIED.value,
    Topic.SLIDES_CONVERTED.value,
    Topic.SLIDES_QC.value,
    Topic.SLIDES_STATUS.value,
]
UPLOAD_TIMEOUT_S = 420.0
END_TIMEOUT_S = 420.0
FIRST_ACKS = 2
"""The kill comes once this many uploads were answered: the batch is being produced."""


@pytest.mark.timeout(1200)
def test_a_leader_killed_mid_produce_loses_and_duplicates_nothing(stack: FaultStack) -> None:
    run = Run(stack, "leader-kill")
    result = ScenarioResult(
        scenario="c-leader-kill",
        title="Partition leader broker killed during produce",
        injected=f"SIGKILL of the broker leading most partitions of the slide topics while the "
        f"batch is produced; restarted after {DOWN_S:.0f} s",
        checked="every slide reaches QC; invariants 1-4; recovery: kill to the first record on "
        "a partition the broker led",
    )
    batch = run.upload(SLIDES, first_seed=300)
    deadline = time.monotonic() + UPLOAD_TIMEOUT_S
    while batch.acknowledged() < FIRST_ACKS and time.monotonic() < deadline:
        time.sleep(0.2)

    leaders = stack.servers.leaders(PRODUCED_TOPICS)
    victim_id, led = Counter(leaders.values()).most_common(1)[0]
    victim = stack.servers.broker(victim_id)
    result.in_flight = run.in_flight(batch)
    killed_at = victim.process.kill()
    time.sleep(DOWN_S)
    victim.process.start()
    stack.servers.wait_for_brokers()
    in_sync_s = stack.servers.wait_in_sync()
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)
    retried = sum(1 for r in batch.results if r.attempts > 1)

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=killed_at)
    # Recovery here is the failover: from the kill to the first record the pipeline appended
    # to a partition the killed broker had led (the others never stopped).
    orphaned = {where for where, leader in leaders.items() if leader == victim_id}
    wanted = set(run.expected)
    failover = min(
        (
            r.timestamp_s
            for r in ledger.records
            if (r.topic, r.partition) in orphaned and r.key in wanted and r.timestamp_s > killed_at
        ),
        default=None,
    )
    result.recovery_s = None if failover is None else round(failover - killed_at, 1)
    result.notes += [
        f"broker {victim_id} led {led} of {len(leaders)} partitions of the slide topics; "
        f"replicas in sync again {in_sync_s:.1f} s after its restart",
        f"uploads the client ran again: {retried}",
    ]
    result.save()

    assert not result.failures, "\n".join(result.failures)

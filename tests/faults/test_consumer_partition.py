"""Scenario (g): one replica of a consuming service cut off from every broker for twice the
consumer session timeout while the batch is mid-stage.

A second convert process joins convert's consumer group; its Kafka clients bootstrap from the
brokers' spare listeners, so every connection it makes goes through proxies of its own
(``kafka-<id>-spare``). While the batch flows, at a moment the replica has a message in hand
(else half a minute after the whole batch is uploaded), those proxies are disabled
(connections closed, new ones refused) for twice the session timeout: the replica can neither
heartbeat nor commit nor publish, the group coordinator evicts it and hands its partitions to
the first convert process. When the proxies come back the cut replica rejoins; whatever it had
in hand must not be announced twice, and it must not commit an offset whose decision is not in
the log.
"""

from __future__ import annotations

import time

import pytest

from tests.support.faults.batch import BatchUpload
from tests.support.faults.pipeline import Service
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.servers import TOPIC_PARTITIONS
from tests.support.faults.stack import FaultStack

pytestmark = [pytest.mark.faults, pytest.mark.quick]

SLIDES = 10
SERVICE = "convert"
SESSION_TIMEOUT_S = 10.0
"""The consumers' ``session.timeout.ms``: no slidestream setting changes it, so it is
FastStream's (and aiokafka's) default, 10 s (``slidestream_platform.broker.make_bus``)."""
CUT_S = 2 * SESSION_TIMEOUT_S
BUSY_POLL_S = 0.2
BUSY_WAIT_S = 30.0
"""How long after the last upload the cut still waits for the replica to have work."""
UPLOAD_TIMEOUT_S = 420.0
END_TIMEOUT_S = 600.0
CONVERTED = '"slide converted"'
"""The log line of a conversion done (whether or not its decision was announced)."""
GROUP_POLL_S = 1.0


def _members(stack: FaultStack) -> str:
    members = stack.servers.group_members(SERVICE)
    return f"{len(members)} member(s): " + "; ".join(
        ", ".join(partitions) or "nothing" for partitions in members.values()
    )


def _handed_over(stack: FaultStack, cut_at: float) -> float | None:
    """Watch the group until the cut's end: seconds from the cut until one member held every
    partition (None if that never happened)."""
    handed: float | None = None
    while time.time() < cut_at + CUT_S:
        members = stack.servers.group_members(SERVICE)
        owned = [p for partitions in members.values() for p in partitions]
        if handed is None and len(members) == 1 and len(owned) == TOPIC_PARTITIONS:
            handed = time.time() - cut_at
        time.sleep(GROUP_POLL_S)
    return handed


def _in_hand(replica: Service) -> int:
    """Messages the replica received and has not finished (FastStream logs both)."""
    text = replica.process.log_since(0)
    return text.count(" - Received") - text.count(" - Processed")


def _wait_until_busy(replica: Service, batch: BatchUpload) -> bool:
    """Wait for the moment to cut: the replica has a message in hand (True), or, failing that,
    ``BUSY_WAIT_S`` after the whole batch was uploaded (False)."""
    deadline = time.monotonic() + UPLOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        if _in_hand(replica) > 0:
            return True
        if batch.acknowledged() >= len(batch.files):
            deadline = min(deadline, time.monotonic() + BUSY_WAIT_S)
        time.sleep(BUSY_POLL_S)
    return False


def _cut(stack: FaultStack) -> tuple[float | None, dict[str, str]]:
    """Every spare proxy disabled for ``CUT_S``, then enabled: when one member held every
    partition (:func:`_handed_over`), and each process's ``/readyz`` at the cut's end."""
    spare = [broker.spare.name for broker in stack.servers.brokers]
    cut_at = time.time()
    for proxy in spare:
        stack.servers.proxies.set_enabled(proxy, False)
    handover_s = _handed_over(stack, cut_at)
    readiness = stack.pipeline.readiness()
    for proxy in spare:
        stack.servers.proxies.set_enabled(proxy, True)
    return handover_s, readiness


@pytest.mark.timeout(1500)
def test_a_replica_cut_from_the_brokers_hands_over_and_repeats_nothing(
    stack: FaultStack,
) -> None:
    run = Run(stack, "consumer-partition")
    result = ScenarioResult(
        scenario="g-consumer-partition",
        title="A consumer replica partitioned from the brokers",
        injected=f"a second {SERVICE} replica, on proxies of its own to each broker, cut from "
        f"all brokers (proxies disabled) for {CUT_S:.0f} s (twice the {SESSION_TIMEOUT_S:.0f} s "
        "session timeout) while the batch is mid-stage",
        checked="the group hands the cut replica's partitions to the other; every slide "
        "reaches QC; no duplicate and no offset committed without its decision (invariants "
        "1-4) after the replica rejoins; recovery: the cut to one member holding every "
        "partition",
    )
    replica = stack.pipeline.start_replica(SERVICE, spare=True)
    before = _members(stack)
    batch = run.upload(SLIDES, first_seed=700)
    busy = _wait_until_busy(replica, batch)

    result.in_flight = run.in_flight(batch)
    first = stack.pipeline.services[SERVICE].process
    offsets = (first.log_offset(), replica.process.log_offset())
    cut_at = time.time()
    handover_s, readiness = _cut(stack)
    fault_ended = time.time()
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    after = _members(stack)
    run.judge(result, ledger, fault_ended=fault_ended)
    handover = ledger.first_decision_after(list(run.expected), cut_at + SESSION_TIMEOUT_S)
    converted = (
        replica.process.log_since(0)[: offsets[1]].count(CONVERTED),
        replica.process.log_since(offsets[1]).count(CONVERTED),
        first.log_since(offsets[0]).count(CONVERTED),
    )
    result.notes += [
        f"{SERVICE} group before the cut: {before}",
        "one member held every partition "
        + ("never during the cut" if handover_s is None else f"{handover_s:.1f} s after it"),
        f"after the batch: {after}",
        f"{replica.name} had a message in hand at the cut: {'yes' if busy else 'no'}; "
        f"conversions done by it: {converted[0]} before the cut, {converted[1]} from it on; "
        f"by {SERVICE} from the cut on: {converted[2]}",
        f"{replica.name} alive after the cut: {replica.process.alive}; /readyz at its end: "
        + "; ".join(f"{n}: {a}" for n, a in readiness.items()),
        "first decision after the session timeout ran out: "
        + ("none" if handover is None else f"{handover - cut_at:.1f} s after the cut"),
    ]
    # Recovery here is the handover: the batch may well end before the replica is back.
    result.recovery_s = None if handover_s is None else round(handover_s, 1)
    if handover_s is None:
        result.failures.append("the group never handed every partition to one member")
    result.save()

    assert result.in_flight > 0, "the cut began after the batch had ended: nothing was tested"
    assert not result.failures, "\n".join(result.failures)

"""Scenario (i): every slide service's handler runs longer than ``max.poll.interval.ms``.

No sleep is added to the product: deid, convert and qc are restarted with a short
``KAFKA_MAX_POLL_INTERVAL_S`` (and a liveness margin to match), and the object store is made
slow — a Toxiproxy ``bandwidth`` toxic on the S3 proxy, both ways — so that downloading and
uploading a slide takes several times the interval, as a large slide on a busy store does.
The batch is uploaded first with the three services stopped, so that every slide meets the
slow store in each of them; each then runs with a second replica in its group, so that an
evicted member's partitions go to the other while it still works.

A consumer that does not poll for the interval is evicted by its own client (aiokafka leaves
the group); its handler goes on, and the offset commit after it fails (the group has another
generation). The message comes back — to the other replica, maybe while the first still works
on it — and the step's decision row must make the second handling announce nothing new.
Convert keeps its membership while it works (``slidestream_platform.membership``), so it is
expected to stay in its group. What each process's ``/healthz`` said meanwhile is recorded.
"""

from __future__ import annotations

import threading

import pytest

from tests.support.faults.pipeline import Service
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = pytest.mark.faults

SLIDES = 5
STEPS = ("deid", "convert", "qc")
MAX_POLL_INTERVAL_S = 6.0
SETTINGS = {
    "KAFKA_MAX_POLL_INTERVAL_S": f"{MAX_POLL_INTERVAL_S:g}",
    # /healthz fails 6 s after the interval ran out without a poll.
    "KAFKA_LIVENESS_MARGIN_S": "6",
    # A waiting redelivery's sleep must stay below the interval too.
    "KAFKA_RETRY_BACKOFF_MAX_S": "2",
}
RATE_KB_S = 80
"""The object store's bandwidth per connection and direction: a slide (~0.9 MB) takes ~11 s
each way, about twice the interval."""
LEFT_GROUP = "LeaveGroup request succeeded"
"""What aiokafka logs when it leaves the group itself: the poll interval ran out."""
COMMIT_FAILED = "CommitFailedError("
"""In the line FastStream logs (CRITICAL) when an acknowledgement's commit failed."""
REDELIVERED = "redelivered slide already"
"""What deid, convert and qc log when a redelivery finds the decision made and announced."""
HEALTH_POLL_S = 3.0
UPLOAD_TIMEOUT_S = 300.0
END_TIMEOUT_S = 900.0


def _watch_health(stack: FaultStack, stop: threading.Event, worst: dict[str, str]) -> None:
    """Until ``stop``: each service's ``/healthz``; per service, the first answer that was not
    ``ok`` (or ``ok`` throughout)."""
    while not stop.wait(HEALTH_POLL_S):
        for name, answer in stack.pipeline.liveness().items():
            if name.split("-", 1)[0] in STEPS and worst.get(name, "ok") == "ok":
                worst[name] = answer


def _slow_store(stack: FaultStack) -> None:
    for stream in ("downstream", "upstream"):
        stack.servers.proxies.add_toxic(
            "s3", f"slow-{stream}", "bandwidth", {"rate": RATE_KB_S}, stream=stream
        )


def _start_steps(stack: FaultStack) -> dict[str, Service]:
    """deid, convert and qc started again (with :data:`SETTINGS`), and a second replica of
    each; the replicas by step."""
    for step in STEPS:
        stack.pipeline.restart(step)
    replicas = {step: stack.pipeline.start_replica(step, wait=False) for step in STEPS}
    for replica in replicas.values():
        stack.pipeline.wait_ready(replica.name)
    return replicas


def _what_happened(
    stack: FaultStack, offsets: dict[str, int], replicas: dict[str, Service], health: dict[str, str]
) -> tuple[int, list[str]]:
    """The evictions the steps' logs tell of, and a note per step."""
    evictions, notes = 0, []
    for step in STEPS:
        text = stack.pipeline.services[step].process.log_since(offsets[step])
        text += replicas[step].process.log_since(0)
        evictions += text.count(LEFT_GROUP)
        failed_commits = sum(
            1 for line in text.splitlines() if "CRITICAL" in line and COMMIT_FAILED in line
        )
        notes.append(
            f"{step} (2 replicas): left its group {text.count(LEFT_GROUP)} time(s) on the poll "
            f"interval, {failed_commits} failed commit(s) logged, "
            f"{text.count(REDELIVERED)} redelivery(ies) found decided; /healthz: "
            f"{health.get(step, 'not asked')}; of {replicas[step].name}: "
            f"{health.get(replicas[step].name, 'not asked')}"
        )
    return evictions, notes


@pytest.mark.timeout(1800)
def test_handlers_longer_than_the_poll_interval_end_once(stack: FaultStack) -> None:
    run = Run(stack, "long-handler")
    result = ScenarioResult(
        scenario="i-long-handler",
        title="Handlers longer than the consumer's poll interval",
        injected=f"deid, convert and qc restarted, two replicas each, with "
        f"KAFKA_MAX_POLL_INTERVAL_S={MAX_POLL_INTERVAL_S:g}; the S3 proxy slowed to "
        f"{RATE_KB_S} KB/s each way, so each slide's handling takes several intervals",
        checked="every slide reaches QC once; invariants 1-4 despite evictions and failed "
        "commits; /healthz recorded",
    )
    for step in STEPS:
        stack.pipeline.services[step].process.stop()
        stack.pipeline.configure(step, SETTINGS)
    batch = run.upload(SLIDES, first_seed=900)
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)
    result.in_flight = run.in_flight()

    _slow_store(stack)
    offsets = {step: stack.pipeline.services[step].process.log_offset() for step in STEPS}
    replicas = _start_steps(stack)
    health: dict[str, str] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_health, args=(stack, stop, health), daemon=True)
    watcher.start()
    try:
        ledger = run.wait_until_ended(END_TIMEOUT_S)
    finally:
        stop.set()
        watcher.join()
        stack.servers.proxies.reset()
    run.judge(result, ledger, fault_ended=None)
    evictions, notes = _what_happened(stack, offsets, replicas, health)
    result.notes += notes
    result.save()

    assert result.in_flight > 0, "the batch ended before the slow store: nothing was tested"
    assert evictions > 0, "no consumer outlived its poll interval: nothing was tested"
    assert not result.failures, "\n".join(result.failures)

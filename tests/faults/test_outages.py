"""Scenarios (a), (e), (f): a server unreachable while slides are mid-stage.

The Toxiproxy proxy in front of the server — the only way the services (and tusd) reach it — is
disabled once the whole batch is uploaded and moving through deid, convert and qc: its
connections are closed and new ones refused, as when the server's host goes down. The steps
must wait the outage out (redelivery without counting attempts, never a dead letter) and
finish every slide after it.

* (a) the object store (MinIO), 60 s;
* (e) PostgreSQL, 30 s: decision rows, delivery attempts and uploads can be neither read nor
  written;
* (f) the Kafka broker leading most partitions, on the clients' path only, 45 s: it stays in
  the cluster (it replicates over its own listener), so its partitions keep their leader and
  the clients must wait for it — longer than a producer's request timeout (40 s).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import pytest

from slidestream_contracts.topics import Topic
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = pytest.mark.faults

SLIDES = 10
READINESS_BEFORE_END_S = 5.0
UPLOAD_TIMEOUT_S = 300.0
END_TIMEOUT_S = 420.0
SLIDE_TOPICS = [
    Topic.SLIDES_UPLOADED.value,
    Topic.SLIDES_DEIDENTIFIED.value,
    Topic.SLIDES_CONVERTED.value,
    Topic.SLIDES_QC.value,
]


@dataclass(frozen=True, slots=True)
class Outage:
    scenario: str
    title: str
    proxy: str
    """The proxy to disable; ``kafka-leader``: the broker leading most slide partitions."""
    seconds: float
    seed: int


OUTAGES = [
    Outage("a-s3-outage", "Object store unreachable mid-stage", "s3", 60.0, 0),
    Outage("e-db-outage", "PostgreSQL unreachable mid-stage", "postgres", 30.0, 400),
    Outage(
        "f-broker-unreachable", "A leader broker unreachable by clients", "kafka-leader", 45.0, 500
    ),
]


def _proxy_name(stack: FaultStack, outage: Outage) -> tuple[str, str]:
    """The proxy to cut, and a note on why this one."""
    if outage.proxy != "kafka-leader":
        return outage.proxy, ""
    leaders = stack.servers.leaders(SLIDE_TOPICS)
    broker, led = Counter(leaders.values()).most_common(1)[0]
    return f"kafka-{broker}", f"broker {broker} (leads {led} of {len(leaders)} slide partitions)"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("outage", OUTAGES, ids=[o.scenario for o in OUTAGES])
def test_an_outage_is_waited_out(stack: FaultStack, outage: Outage) -> None:
    run = Run(stack, outage.scenario.split("-", 1)[1])
    proxy, why = _proxy_name(stack, outage)
    result = ScenarioResult(
        scenario=outage.scenario,
        title=outage.title,
        injected=f"proxy {proxy} disabled for {outage.seconds:.0f} s (connections closed, new "
        "ones refused) once the batch is uploaded and in deid/convert/qc",
        checked="every slide reaches QC after the outage; no dead letter; invariants 1-4",
    )
    batch = run.upload(SLIDES, first_seed=outage.seed)
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)

    result.in_flight = run.in_flight()
    stack.servers.proxies.set_enabled(proxy, False)
    time.sleep(outage.seconds - READINESS_BEFORE_END_S)
    readiness = stack.pipeline.readiness()
    time.sleep(READINESS_BEFORE_END_S)
    stack.servers.proxies.set_enabled(proxy, True)
    fault_ended = time.time()
    if why:
        result.notes.append(why)
    result.notes.append(
        "/readyz 5 s before the outage's end: "
        + "; ".join(f"{name}: {answer}" for name, answer in readiness.items())
    )

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=fault_ended)

    assert result.in_flight > 0, "the outage began after the batch had ended: nothing was tested"
    assert not result.failures, "\n".join(result.failures)

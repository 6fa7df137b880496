"""Scenarios (j), (k): a server's own process stopped or restarted while slides are mid-stage.

Unlike (a) and (e), which cut the way to a server that stays up, here the server itself goes —
whatever it held only in memory is gone — and comes back on the same data directory and port:

* (j) MinIO, SIGKILLed once the whole batch is uploaded and moving through deid, convert and
  qc, started again after 60 s. Every object it acknowledged must still be whole; every step
  must wait the outage out (no dead letter) and finish every slide after it.
* (k) PostgreSQL, restarted while the batch's decisions are being written and published:
  first a crash restart (SIGQUIT to the postmaster, what ``pg_ctl restart -m immediate``
  sends: no checkpoint, crash recovery at the next start), later a fast one (SIGINT,
  ``-m fast``: every session cut, a checkpoint), each started again at once. A committed
  decision must survive; one cut before its commit is redone, and published once.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import pytest

from tests.support.faults.batch import BatchUpload
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = pytest.mark.faults

SLIDES = 10
MINIO_DOWN_S = 60.0
READINESS_BEFORE_END_S = 5.0
UPLOAD_TIMEOUT_S = 420.0
END_TIMEOUT_S = 420.0
POLL_S = 0.5


@pytest.mark.timeout(900)
def test_minio_stopped_mid_stage_is_waited_out(stack: FaultStack) -> None:
    run = Run(stack, "minio-stopped")
    result = ScenarioResult(
        scenario="j-minio-stopped",
        title="MinIO's process stopped mid-stage",
        injected=f"MinIO SIGKILLed once the batch is uploaded and in deid/convert/qc; started "
        f"again after {MINIO_DOWN_S:.0f} s on the same data directory and port",
        checked="every slide reaches QC after the outage; no dead letter; invariants 1-4; "
        "recovery: MinIO's restart to the next decision",
    )
    batch = run.upload(SLIDES, first_seed=1000)
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)

    result.in_flight = run.in_flight()
    minio = stack.servers.process("minio")
    minio.kill()
    time.sleep(MINIO_DOWN_S - READINESS_BEFORE_END_S)
    readiness = stack.pipeline.readiness()
    time.sleep(READINESS_BEFORE_END_S)
    restarted = time.time()
    minio.start()
    ready_s = stack.servers.wait_for_minio()
    result.notes += [
        f"MinIO ready {ready_s:.1f} s after its restart",
        f"/readyz {READINESS_BEFORE_END_S:.0f} s before the restart: "
        + "; ".join(f"{name}: {answer}" for name, answer in readiness.items()),
    ]

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=restarted)

    assert result.in_flight > 0, "MinIO stopped after the batch had ended: nothing was tested"
    assert not result.failures, "\n".join(result.failures)


@dataclass(frozen=True, slots=True)
class PgRestart:
    mode: str
    """``pg_ctl``'s shutdown mode the signal stands for."""
    sig: signal.Signals
    after_ended: int
    """Slides of the batch that have ended when it comes."""


PG_RESTARTS = (
    PgRestart("immediate", signal.SIGQUIT, 1),
    PgRestart("fast", signal.SIGINT, SLIDES // 2),
)


def _restart_postgres(
    stack: FaultStack, run: Run, batch: BatchUpload
) -> list[tuple[str, float, float]]:
    """Each of :data:`PG_RESTARTS` once its share of the batch has ended; for each, the mode,
    the epoch second PostgreSQL accepted connections again and how long it had not."""
    postgres = stack.servers.process("postgres")
    back: list[tuple[str, float, float]] = []
    deadline = time.monotonic() + END_TIMEOUT_S
    for restart in PG_RESTARTS:
        while run.ended(batch) < restart.after_ended and time.monotonic() < deadline:
            time.sleep(POLL_S)
        run.in_flight_max = max(run.in_flight_max, run.in_flight(batch))
        stopped_at = postgres.kill(restart.sig)
        assert not postgres.alive, f"PostgreSQL still running after its {restart.mode} stop"
        postgres.start()
        stack.servers.wait_for_postgres()
        back.append((restart.mode, time.time(), time.time() - stopped_at))
    return back


@pytest.mark.quick
@pytest.mark.timeout(900)
def test_postgres_restarted_during_publication_loses_nothing(stack: FaultStack) -> None:
    run = Run(stack, "pg-restart")
    modes = " then ".join(f"{r.mode} ({r.sig.name})" for r in PG_RESTARTS)
    result = ScenarioResult(
        scenario="k-postgres-restart",
        title="PostgreSQL restarted during publication",
        injected=f"PostgreSQL stopped and started again at once, {modes}, once "
        + " and ".join(str(r.after_ended) for r in PG_RESTARTS)
        + f" of {SLIDES} slides had ended",
        checked="every slide reaches QC; no dead letter; invariants 1-4; recovery: a restart "
        "to the next decision (the longest)",
    )
    batch = run.upload(SLIDES, first_seed=1100)
    restarts = _restart_postgres(stack, run, batch)
    run.expect_uploads(batch, UPLOAD_TIMEOUT_S)
    result.in_flight = run.in_flight_max
    retried = sum(1 for r in batch.results if r.attempts > 1)
    result.notes.append(f"uploads the client ran again: {retried}")

    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=restarts[-1][1])
    ids = list(run.expected)
    recoveries = {
        mode: resumed - ready_at
        for mode, ready_at, _ in restarts
        if (resumed := ledger.first_decision_after(ids, ready_at)) is not None
    }
    result.recovery_s = round(max(recoveries.values()), 1) if recoveries else None
    result.notes += [
        f"{mode} restart: PostgreSQL refused connections {down_s:.1f} s; next decision "
        + (f"{recoveries[mode]:.1f} s after it was ready" if mode in recoveries else "none")
        for mode, _, down_s in restarts
    ]
    result.save()

    assert result.in_flight > 0, "PostgreSQL restarted after the batch had ended"
    assert not result.failures, "\n".join(result.failures)

"""One scenario's batch, followed until every slide has ended, and judged on the four
invariants of the fault suite:

1. every slide reached exactly one terminal state (the one expected of it);
2. each decision event was published exactly once (records per slide per decision topic);
3. no object is half-written (every referenced or platform-written object hashes right);
4. no consumed message was acknowledged (offset committed) without its decision in the log.

The measurements are saved as JSON under ``.local/faults/results/`` for ``docs/reliability.md``
(:mod:`tests.support.faults.report`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.support.faults.batch import BatchUpload, make_slides
from tests.support.faults.ledger import Ledger
from tests.support.faults.objects import check_objects
from tests.support.faults.stack import FaultStack, results_dir

POLL_S = 3.0
SETTLE_S = 8.0
"""After the last slide ended: time for a late duplicate (a redelivery's re-announcement)."""
QC_REACHED = "qc:"


@dataclass
class ScenarioResult:
    scenario: str
    title: str
    injected: str
    checked: str
    slides: int = 0
    in_flight: int = 0
    """Slides of the batch not yet ended when the fault began."""
    lost: int = 0
    """Slides that never ended, plus acknowledged messages without their decision."""
    duplicates: int = 0
    half_written: int = 0
    objects_checked: int = 0
    recovery_s: float | None = None
    """From the end of the fault to the next decision the pipeline published."""
    drain_s: float | None = None
    """From the end of the fault to the batch's last terminal state."""
    wall_s: float = 0.0
    attempts: int | None = None
    """Security scenarios: the requests (or PHI strings × places) they tried."""
    leaks: int | None = None
    """Security scenarios: the attempts that got another tenant's data, or PHI found."""
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def save(self, directory: Path | None = None) -> Path:
        directory = directory or results_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.scenario}.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> ScenarioResult:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class Run:
    """A scenario's tenant, batch and expectations on a running :class:`FaultStack`."""

    stack: FaultStack
    name: str
    expected: dict[str, str] = field(default_factory=dict)
    """Slide id → the terminal state expected (a prefix: ``qc:``, ``failed:deid``...)."""
    tenant: str = ""
    token: str = ""
    started: float = field(default_factory=time.time)
    in_flight_max: int = 0
    """The most slides in flight at a fault's start, for scenarios with several faults."""

    def __post_init__(self) -> None:
        self.tenant = f"{self.name}-{uuid.uuid4().hex[:6]}"
        self.token = self.stack.pipeline.create_tenant(self.tenant)

    def upload(
        self,
        count: int,
        *,
        first_seed: int = 0,
        extra: list[Path] | None = None,
        names: Mapping[Path, str] | None = None,
    ) -> BatchUpload:
        """``count`` new slides and the ``extra`` files, uploaded in the background; a file in
        ``names`` is sent under that name instead of its own."""
        folder = self.stack.run_dir / "slides" / self.name
        files = make_slides(folder, count, first_seed=first_seed) + (extra or [])
        return BatchUpload(
            self.stack.pipeline.upload_api,
            self.token,
            files,
            self.stack.run_dir / "client-state" / self.name,
            names=names or {},
        ).start()

    def expect_uploads(self, batch: BatchUpload, timeout_s: float, **by_name: str) -> None:
        """Wait for every upload's verdict; each slide is expected to reach QC unless its file
        name is given (``not_a_slide="rejected:upload"``)."""
        for outcome in batch.wait(timeout_s):
            assert outcome.slide_id, f"{outcome.path.name} got no slide id: {outcome.error}"
            self.expected[outcome.slide_id] = by_name.get(outcome.path.stem, QC_REACHED)

    def ledger(self, *, with_offsets: bool = False) -> Ledger:
        return Ledger.read(self.stack.servers.bootstrap, with_offsets=with_offsets)

    def in_flight(self, batch: BatchUpload | None = None) -> int:
        """Slides not ended yet: of ``batch`` (those still uploading included) and of the
        expected ones."""
        ledger = self.ledger()
        known = set(self.expected)
        total = len(known)
        if batch is not None:
            uploaded = {r.slide_id for r in list(batch.results) if r.slide_id}
            total += len(batch.files) - len(uploaded & known)
            known |= uploaded
        return total - sum(1 for slide_id in known if ledger.terminals(slide_id))

    def ended(self, batch: BatchUpload) -> int:
        """Slides of ``batch`` with a terminal state in the log now."""
        ledger = self.ledger()
        ids = {r.slide_id for r in list(batch.results) if r.slide_id}
        return sum(1 for slide_id in ids if ledger.terminals(slide_id))

    def wait_until_ended(self, timeout_s: float) -> Ledger:
        """Poll the log until every expected slide has a terminal state (or time is up), then
        give a duplicate the time to appear."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ledger = self.ledger()
            if all(ledger.terminals(slide_id) for slide_id in self.expected):
                break
            time.sleep(POLL_S)
        time.sleep(SETTLE_S)
        return self.ledger(with_offsets=True)

    def judge(
        self, result: ScenarioResult, ledger: Ledger, *, fault_ended: float | None
    ) -> ScenarioResult:
        """Invariants 1-4 on ``ledger`` and the buckets, into ``result`` (saved)."""
        ids = list(self.expected)
        result.slides = len(ids)
        verdict = assess(self.expected, ledger)
        result.lost, result.duplicates = verdict.lost, verdict.duplicates
        result.failures += verdict.failures
        objects = check_objects(self.stack.s3(), ledger, ids, self.tenant)
        result.objects_checked, result.half_written = objects.checked, len(objects.broken)
        result.failures += [f"object not whole: {b}" for b in objects.broken]
        if fault_ended is not None:
            resumed = ledger.first_decision_after(ids, fault_ended)
            last = ledger.last_terminal_time(ids)
            result.recovery_s = None if resumed is None else round(resumed - fault_ended, 1)
            result.drain_s = None if last is None else round(max(0.0, last - fault_ended), 1)
        result.wall_s = round(time.time() - self.started, 1)
        result.save()
        return result


@dataclass
class Assessment:
    lost: int = 0
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)


def assess(expected: dict[str, str], ledger: Ledger) -> Assessment:
    """Invariants 1, 2 and 4 (and: dead letters for the poison alone) on the log."""
    verdict = Assessment()
    for slide_id, wanted in expected.items():
        terminals = ledger.terminals(slide_id)
        if not terminals:
            verdict.lost += 1
            verdict.failures.append(f"{slide_id}: no terminal state (expected {wanted})")
        elif len(set(terminals)) > 1:
            verdict.failures.append(f"{slide_id}: several terminal states {terminals}")
        elif not terminals[0].startswith(wanted):
            verdict.failures.append(f"{slide_id}: ended {terminals[0]}, expected {wanted}")
    duplicates = ledger.duplicates(expected)
    verdict.duplicates = sum(n - 1 for topics in duplicates.values() for n in topics.values())
    verdict.failures += [f"{s}: published more than once {t}" for s, t in duplicates.items()]
    undecided = ledger.acknowledged_undecided(expected)
    verdict.lost += len(undecided)
    verdict.failures += [f"acknowledged without a decision: {u}" for u in undecided]
    poison = {s for s, wanted in expected.items() if wanted.startswith("failed:")}
    unexpected = sorted(set(ledger.dead_letters(expected)) - poison)
    verdict.failures += [f"{s}: dead-lettered, but not a poison message" for s in unexpected]
    return verdict

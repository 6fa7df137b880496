"""``docs/reliability.md`` from the fault suite's last run (``make test-faults`` ends with
``python -m tests.support.faults.report --out docs/reliability.md``).

Reads the scenarios' measurements (``.local/faults/results/<scenario>.json``) and the
session's (``session.json``) and writes the table with the promises the platform relies on.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from slidestream_devstack import versions
from tests.support.faults.pipeline import SUITE_SETTINGS
from tests.support.faults.scenario import ScenarioResult
from tests.support.faults.servers import BROKERS, REPLICATION, TOPIC_PARTITIONS
from tests.support.faults.stack import results_dir

SESSION_FILE = "session.json"


@dataclass(frozen=True, slots=True)
class Session:
    finished: str
    wall_s: float
    cpus: int
    scenarios: list[str]


def save_session(started_monotonic: float, scenarios: list[str]) -> None:
    session = Session(
        finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        wall_s=round(time.monotonic() - started_monotonic, 1),
        cpus=os.cpu_count() or 0,
        scenarios=scenarios,
    )
    directory = results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SESSION_FILE).write_text(json.dumps(asdict(session), indent=2) + "\n")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _table(results: list[ScenarioResult]) -> list[str]:
    lines = [
        "| scenario | injected | checked | slides | in flight | lost | duplicates "
        "| half-written | recovery (s) | batch done (s) | result |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "pass" if not r.failures else f"**FAIL** ({len(r.failures)})"
        lines.append(
            f"| {r.scenario}: {r.title} | {r.injected} | {r.checked} | {r.slides} "
            f"| {r.in_flight} | {r.lost} | {r.duplicates} | {r.half_written} "
            f"| {_seconds(r.recovery_s)} | {_seconds(r.drain_s)} | {verdict} |"
        )
    return lines


def _security_table(results: list[ScenarioResult]) -> list[str]:
    """The security scenarios (p, q, o): what they tried and what got through, not slides."""
    lines = [
        "| scenario | injected | checked | slides | attempts | leaks | result |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "pass" if not r.failures else f"**FAIL** ({len(r.failures)})"
        lines.append(
            f"| {r.scenario}: {r.title} | {r.injected} | {r.checked} | {r.slides} "
            f"| {r.attempts} | {r.leaks} | {verdict} |"
        )
    return lines


def _security_section(results: list[ScenarioResult]) -> list[str]:
    return [SECURITY_INTRO, "", *_security_table(results), ""] if results else []


def _notes(results: list[ScenarioResult]) -> list[str]:
    lines: list[str] = []
    for r in results:
        measured = "" if r.attempts is not None else f", {r.objects_checked} objects hashed"
        lines.append(
            f"* **{r.scenario}** ({r.wall_s:.0f} s{measured}): " + ("; ".join(r.notes) or "—")
        )
        lines += [f"  * failure: {failure}" for failure in r.failures]
    return lines


PROMISES = """\
## The promises these results rest on

| layer | promise | how the platform uses it |
|---|---|---|
| Kafka | A record acknowledged under `acks=all` is on every in-sync replica; with \
`min.insync.replicas=2` of 3 that is at least two brokers, and a leader is elected only \
from the in-sync replicas (`unclean.leader.election.enable=false`, the default). | \
Producers use `acks=all` with idempotence (`slidestream_platform.broker`), so an \
acknowledged decision survives its leader's death (scenario c) and a retried send is not \
written twice. |
| Kafka | An idempotent producer's retries are de-duplicated by the partition leader, which \
replicates the producer's sequence numbers to its followers. | A send retried across a \
leader change (c, f) is appended once. |
| Kafka | A consumer group's committed offset moves only when the group commits it. | \
Consumers never auto-commit; the offset is committed after the handler returned \
(`NACK_ON_ERROR`), i.e. after the decision is durable — invariant 4 checks exactly this. |
| S3 (MinIO) | Strong read-after-write consistency; a PUT (or a completed multipart upload) \
makes the whole object visible at once, never a part of it. | Objects are written under \
deterministic keys before their decision is recorded; a redo overwrites whole objects \
(invariant 3). |
| PostgreSQL | A committed transaction survives a crash (`fsync=on`, \
`synchronous_commit=on`, the defaults). | A step's decision (its exact events and the \
publication mark), and upload's lease and \
verdict, are committed before anything is published; a redelivery finds them \
(`slidestream_platform.decisions`, `slidestream_platform.attempts`). |
"""


SECURITY_INTRO = (
    "Security scenarios run on the local stack (`slidestream stack up`: every service, "
    "catalog, search and inference included), not through the fault stack. **Attempts**: "
    "the requests they made (or, for de-identification, PHI strings × places searched); "
    "**leaks**: those that reached another tenant's data, or PHI found; both judged per "
    "attempt, so leaks must be 0."
)


def render(results: list[ScenarioResult], session: Session | None) -> str:
    when = (
        f"{session.finished}, {session.wall_s / 60:.1f} min for the whole run on "
        f"{session.cpus} CPU cores"
        if session
        else "unknown"
    )
    settings = ", ".join(f"`{k}={v}`" for k, v in SUITE_SETTINGS.items())
    lines = [
        "# Reliability: the fault suite",
        "",
        "Generated by `make test-faults` (`tests/faults`, "
        "`python -m tests.support.faults.report`); do not edit by hand.",
        f"Last run: {when}.",
        "",
        f"Each scenario pushes a batch of generated slides (painted H&E pyramids, "
        f"`slidestream_samples.painting`) through the real pipeline — tusd, upload, deid, "
        f"convert, qc — while the fault happens, on a stack of its own: a {BROKERS}-node KRaft "
        f"Kafka {versions.KAFKA_VERSION} cluster (replication factor {REPLICATION.factor}, "
        f"`min.insync.replicas` {REPLICATION.min_insync}, {TOPIC_PARTITIONS} partitions per "
        f"slide topic), MinIO and PostgreSQL {versions.POSTGRES_MAJOR}, every connection of "
        f"the services through Toxiproxy {versions.TOXIPROXY_VERSION}. Afterwards it reads "
        "every topic from the start and checks:",
        "",
        "1. every slide reached exactly one terminal state, the expected one (a QC verdict, "
        "a rejection, a dead letter);",
        "2. each decision event was published exactly once: one record per slide per "
        "decision topic (`slides.uploaded`, `.rejected`, `.deidentified`, `.converted`, "
        "`.qc`, `dlq.<step>`; status events are idempotent and not counted);",
        "3. no object is half-written: every object an event references has the size and "
        "SHA-256 the event states, and every object a service wrote hashes to its "
        "`x-amz-meta-sha256` (read back from MinIO, bypassing the proxy);",
        "4. no message was acknowledged whose work was not durable: every record below a "
        "step's committed offset has that step's decision in the log.",
        "",
        "**Lost** counts slides without a terminal state plus acknowledged records without "
        "their decision; **duplicates** counts extra records on decision topics; both must "
        "be 0. **In flight**: slides of the batch not yet ended when the fault began. "
        "**Recovery**: after an outage, from its end to the next decision the pipeline "
        "published; after kills, from a restart to the killed step's next decision (the "
        "longest of them); after a broker's death, from the kill to the first record on a "
        "partition it led (the failover). **Batch done**: from the end of the fault (the last "
        "restart; the kill, for the broker) to the batch's last terminal state. Times are the "
        "brokers' append times (`log.message.timestamp.type=LogAppendTime` in the suite's "
        "cluster): a send retried across a fault dates from when it landed.",
        "",
        "## Scenarios",
        "",
        *_table([r for r in results if r.attempts is None]),
        "",
        *_security_section([r for r in results if r.attempts is not None]),
        *_notes(results),
        "",
        f"Settings that differ from the services' defaults: {settings}.",
        "",
        PROMISES,
    ]
    return "\n".join(lines)


def load_results(directory: Path) -> tuple[list[ScenarioResult], Session | None]:
    results = [
        ScenarioResult.load(path)
        for path in sorted(directory.glob("*.json"))
        if path.name != SESSION_FILE
    ]
    session_path = directory / SESSION_FILE
    session = Session(**json.loads(session_path.read_text())) if session_path.exists() else None
    return results, session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=results_dir())
    parser.add_argument("--out", type=Path, default=Path("docs/reliability.md"))
    args = parser.parse_args()
    results, session = load_results(args.results)
    if not results:
        raise SystemExit(f"no results under {args.results}: run `make test-faults` first")
    args.out.write_text(render(results, session), encoding="utf-8")
    print(f"wrote {args.out} ({len(results)} scenarios)")


if __name__ == "__main__":
    main()

"""Hostile inputs uploaded like slides (scenarios m and n), what each must end as, and the
checks that they harmed nothing: every service process still the one started (never crashed,
never restarted), every object key under ``<tenant>/<slide_id>/``, no file written outside the
services' scratch folders, a client's file name kept only made harmless.

The expected verdicts come from the product's code: the upload service refuses what is no
container it takes (``unsupported-format``) and checks a zip's directory before accepting it
(:func:`slidestream_wsi.archive.check_zip`); deid refuses what passes that but is no slide it can
read (:mod:`slidestream_wsi.validate`: bombs, truncation) by dead-lettering it.
"""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio

from slidestream_client.sdk import SlidestreamClient
from slidestream_contracts.topics import Topic
from slidestream_devstack.buckets import BUCKETS
from slidestream_upload.domain.filenames import MAX_FILENAME_BYTES, sanitize_filename
from tests.support import hostile_files as make
from tests.support.faults.batch import BatchUpload
from tests.support.faults.ledger import Ledger
from tests.support.faults.pipeline import Pipeline
from tests.support.faults.scenario import QC_REACHED, Run

REJECTED = "rejected:upload"
DEAD_DEID = "failed:deid"
UNSAFE = "unsafe-archive"
MANY_MEMBERS = 100_001
"""One over ``MAX_ARCHIVE_MEMBER_COUNT``."""
SUITE_DIRS = frozenset(
    {"kafka", "minio", "postgres", "logs", "pids", "results", "slides", "client-state", "secrets"}
)
"""What the suite itself writes under its run folder (servers' data, logs, the inputs)."""
SUITE_FILES = frozenset({"admin.env"})


@dataclass(frozen=True, slots=True)
class Hostile:
    label: str
    path: Path
    expected: str
    """The terminal state it must reach (``rejected:upload``, ``failed:deid``, ``qc:``)."""
    reason: str = ""
    """The reason code the rejection or the dead letter must carry."""
    sent_name: str | None = None
    """The file name the client sends, when not the file's own."""


def bomb_inputs(folder: Path, reference: Path, dicom_instance: Path) -> list[Hostile]:
    """Scenario m: bombs, a truncated slide and files whose name lies about their content."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        Hostile(
            "TIFF declaring 4M x 4M px",
            make.tiff_bomb(folder / "tiff-bomb.svs"),
            DEAD_DEID,
            "slide-bomb",
        ),
        Hostile(
            "one 100k px deflate bomb tile",
            make.tile_bomb(folder / "tile-bomb.tiff"),
            DEAD_DEID,
            "slide-bomb",
        ),
        Hostile(
            "slide cut at 50 %",
            make.truncated_copy(reference, folder / "half.tiff"),
            DEAD_DEID,
            "truncated-slide",
        ),
        Hostile(
            "tile offset past EOF",
            make.tiff_offsets_beyond_eof(folder / "offsets.tiff"),
            DEAD_DEID,
            "truncated-slide",
        ),
        Hostile(
            "DICOM frame longer than the file",
            make.dicom_wrong_pixel_length(dicom_instance, folder / "pixel-length.dcm"),
            DEAD_DEID,
            "truncated-slide",
        ),
        Hostile(
            "PNG named .svs", make.png_file(folder / "picture.svs"), REJECTED, "unsupported-format"
        ),
        Hostile(
            "PDF named .tiff",
            make.pdf_file(folder / "document.tiff"),
            REJECTED,
            "unsupported-format",
        ),
        Hostile(
            "zip member 1000:1",
            make.ratio_bomb_zip(folder / "ratio-bomb.zip"),
            REJECTED,
            "archive-bomb",
        ),
        Hostile(
            f"zip of {MANY_MEMBERS} members",
            make.many_members_zip(folder / "many-members.zip", MANY_MEMBERS),
            REJECTED,
            "archive-too-many-members",
        ),
    ]


def archive_inputs(folder: Path, instance: Path, token: str) -> list[Hostile]:
    """Scenario n: archives whose members try to leave the folder they are extracted into, or
    that cannot be laid out in one (a member both a file and a folder, a name too long for the
    file system, a name that is not the path it normalises to)."""
    folder.mkdir(parents=True, exist_ok=True)
    body = instance.read_bytes()
    slip, absolute, nested, link, _ = escape_names(token)[-5:]
    inner = make.zip_of(folder / "inner.zip", {nested: body})
    members: list[tuple[str, dict[str, bytes], str]] = [
        ("zip slip member", {slip: body}, "archive-path-traversal"),
        ("absolute member", {absolute: body}, "archive-path-traversal"),
        ("member both file and folder", {"s/a.dcm": body, "s/a.dcm/b.dcm": body}, UNSAFE),
        ("member name of 300 bytes", {"s/" + "n" * 296 + ".dcm": body}, UNSAFE),
        ("member name with a ./ part", {"s/./a.dcm": body, "s/b.dcm": body}, UNSAFE),
    ]
    made = [
        Hostile(label, make.zip_of(folder / f"zip-{i}.zip", content), REJECTED, reason)
        for i, (label, content, reason) in enumerate(members)
    ]
    symlink = make.zip_of(
        folder / "symlink.zip", {"series/instance_1.dcm": body}, symlinks={link: "/etc/passwd"}
    )
    duplicate = make.duplicate_member_zip(
        folder / "duplicate.zip", "series/instance_1.dcm", body, body[:-1]
    )
    nested_zip = make.zip_of(folder / "nested.zip", {"series/inner.zip": inner.read_bytes()})
    return [
        *made,
        Hostile("symlink member", symlink, REJECTED, "archive-symlink"),
        Hostile("two members of one name", duplicate, REJECTED, UNSAFE),
        Hostile("zip in a zip (a slip inside)", nested_zip, DEAD_DEID, "unsupported-format"),
    ]


def hostile_names(token: str) -> list[tuple[str, str]]:
    """(what it is, the name sent) for slides that are otherwise good."""
    cafe = f"café-{token}.svs"
    return [
        ("parent traversal", "../../etc/passwd.svs"),
        ("absolute path", f"/etc/hostile-{token}.tiff"),
        ("Windows traversal", f"..\\..\\Windows\\hostile-{token}.svs"),
        ("NUL and control characters", f"slide\x00.svs\r\n\x1b[2Jhostile-{token}\x07.tiff"),
        ("1000-character name", "h" * 996 + ".svs"),
        ("RTL override", f"hostile-{token}-\u202efdp.svs"),
        ("shell metacharacters", f"$(touch pwned-{token}); `id`|&;<>*?!'\"x.svs"),
        ("nothing but dots", ".."),
        ("NFC name", unicodedata.normalize("NFC", cafe)),
        ("NFD name (the NFC one after normalisation)", unicodedata.normalize("NFD", cafe)),
    ]


def named_inputs(slides: list[Path], token: str) -> list[Hostile]:
    names = hostile_names(token)
    assert len(slides) >= len(names)
    return [
        Hostile(label, path, QC_REACHED, sent_name=name)
        for (label, name), path in zip(names, slides, strict=False)
    ]


def expect_hostile(
    run: Run, batch: BatchUpload, timeout_s: float, inputs: Iterable[Hostile]
) -> dict[str, Hostile]:
    """Wait for every upload's verdict; record what each slide must end as (a file that is no
    hostile input must reach QC); the hostile inputs by slide id."""
    by_path = {item.path.resolve(): item for item in inputs}
    found: dict[str, Hostile] = {}
    for outcome in batch.wait(timeout_s):
        assert outcome.slide_id, f"{outcome.path.name} got no slide id: {outcome.error}"
        item = by_path.get(outcome.path.resolve())
        run.expected[outcome.slide_id] = QC_REACHED if item is None else item.expected
        if item is not None:
            found[outcome.slide_id] = item
    return found


def reason_failures(ledger: Ledger, hostile: Mapping[str, Hostile]) -> list[str]:
    """Each rejection or dead letter carries the reason code expected (and a rejection says
    why in words too)."""
    failures: list[str] = []
    dead = ledger.dead_letters(hostile)
    for slide_id, item in hostile.items():
        if not item.reason:
            continue
        if item.expected == REJECTED:
            records = [r.json() for r in ledger.of(slide_id, [Topic.SLIDES_REJECTED.value])]
            reasons = [r.get("reason") for r in records]
            if any(not r.get("detail") for r in records):
                failures.append(f"{item.label}: rejected without a detail")
        else:
            reasons = [d.get("error_reason") for d in dead.get(slide_id, [])]
        if reasons != [item.reason]:
            failures.append(f"{item.label}: reasons {reasons}, expected [{item.reason!r}]")
    return failures


def name_failures(client: SlidestreamClient, hostile: Mapping[str, Hostile]) -> list[str]:
    """The name the upload service kept for each hostile name: the sanitised last component,
    nothing that is a path, a control or a bidirectional character, at most 255 bytes."""
    failures: list[str] = []
    for slide_id, item in hostile.items():
        if item.sent_name is None:
            continue
        kept = client.upload_status(slide_id).filename or ""
        unsafe = (
            "/" in kept
            or "\\" in kept
            or kept in {"", ".", ".."}
            or len(kept.encode()) > MAX_FILENAME_BYTES
            or any(unicodedata.category(c) in {"Cc", "Cf"} for c in kept)
        )
        if unsafe or kept != sanitize_filename(item.sent_name):
            failures.append(f"{item.label}: kept as {kept!r}")
    return failures


@dataclass
class ServiceWatch:
    """The pid and start count of tusd and every service when a scenario began."""

    seen: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, pipeline: Pipeline) -> ServiceWatch:
        watch = cls()
        processes = {n: s.process for n, s in pipeline.services.items()}
        if pipeline.tusd is not None:
            processes["tusd"] = pipeline.tusd
        for name, process in processes.items():
            assert process.record is not None, f"{name} was never started"
            watch.seen[name] = (process.record.pid, process.starts)
        return watch

    def failures(self, pipeline: Pipeline) -> list[str]:
        processes = {n: s.process for n, s in pipeline.services.items()}
        if pipeline.tusd is not None:
            processes["tusd"] = pipeline.tusd
        failures = []
        for name, (pid, starts) in self.seen.items():
            process = processes[name]
            now = (process.record.pid if process.record else None, process.starts)
            if not process.alive or now != (pid, starts):
                failures.append(f"{name} crashed or restarted (pid, starts {pid, starts} → {now})")
        return failures


def key_failures(client: Minio, tenant: str, slide_ids: Iterable[str]) -> tuple[int, list[str]]:
    """Every object of every bucket (MinIO itself): none with a path-like part, and every one
    that names the tenant is under ``<tenant>/<one of its slide ids>/``. (keys scanned,
    failures)"""
    ids = set(slide_ids)
    scanned, failures = 0, []
    for bucket in BUCKETS:
        for item in client.list_objects(bucket, recursive=True):
            key = str(item.object_name)
            scanned += 1
            parts = key.split("/")
            if key.startswith("/") or ".." in parts or any(ord(c) < 0x20 for c in key):
                failures.append(f"{bucket}/{key!r}: not a plain key")
            if tenant in key and (parts[0] != tenant or len(parts) < 3 or parts[1] not in ids):
                failures.append(f"{bucket}/{key!r}: outside {tenant}/<slide_id>/")
    return scanned, failures


def escape_names(token: str) -> list[str]:
    """Every name of scenario n that a careless service could write to: the file names, the
    archive members, and what the shell name's command would create."""
    members = [
        f"../../hostile-escape-{token}.dcm",
        f"/tmp/hostile-escape-{token}.dcm",
        f"../../hostile-nested-{token}.dcm",
        f"series/hostile-link-{token}.dcm",
        f"pwned-{token}",
    ]
    return [name for _, name in hostile_names(token)] + members


def escape_targets(pipeline: Pipeline, names: Iterable[str]) -> list[Path]:
    """Where a name (a file name or an archive member) would land if a service used it as a
    path: under its working folder, its data folder, its scratch folder, or the root."""
    bases = [pipeline.run_dir, Path("/")]
    for name in pipeline.services:
        data = pipeline.run_dir / "data" / name
        bases += [data, data / "scratch"]
    targets: set[Path] = set()
    for raw in names:
        for part in raw.replace("\\", "/").split("\x00"):
            if part.strip("/."):
                targets |= {Path(os.path.normpath(base / part.lstrip("/"))) for base in bases}
    return sorted(targets)


def stray_files(pipeline: Pipeline, since: float, targets: Iterable[Path]) -> list[str]:
    """Files written since ``since`` under the suite's run folder outside the servers' data and
    the services' scratch folders, and any escape target that exists."""
    run_dir = pipeline.run_dir
    found = [f"{t} exists" for t in targets if os.path.lexists(t)]
    for root, dirs, files in os.walk(run_dir):
        relative = Path(root).relative_to(run_dir)
        if relative == Path():
            dirs[:] = [d for d in dirs if d not in SUITE_DIRS]
            files = [f for f in files if f not in SUITE_FILES]
        elif len(relative.parts) == 2 and relative.parts[0] == "data":
            dirs[:] = [d for d in dirs if d != "scratch"]
        for name in files:
            path = Path(root) / name
            if path.stat().st_mtime >= since:
                found.append(f"{path.relative_to(run_dir)} written outside scratch")
    return found


def wait_for_scratch_cleanup(pipeline: Pipeline, timeout_s: float = 60.0) -> list[str]:
    """Files still in the services' scratch folders after ``timeout_s`` (they should empty)."""
    deadline = time.monotonic() + timeout_s
    left: list[str] = []
    while True:
        left = [
            str(p.relative_to(pipeline.run_dir))
            for name in pipeline.services
            for p in (pipeline.run_dir / "data" / name / "scratch").rglob("*")
            if p.is_file()
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2.0)


def harm_failures(
    run: Run,
    hostile: Mapping[str, Hostile],
    watch: ServiceWatch,
    since: float,
    escape: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """Everything scenarios m and n check besides invariants 1-4: (failures, notes)."""
    pipeline = run.stack.pipeline
    ledger = run.ledger()
    failures = reason_failures(ledger, hostile) + watch.failures(pipeline)
    client = SlidestreamClient(pipeline.upload_api, run.token)
    failures += name_failures(client, hostile)
    scanned, bad_keys = key_failures(run.stack.s3(), run.tenant, run.expected)
    failures += bad_keys
    failures += stray_files(pipeline, since, escape_targets(pipeline, escape))
    left = wait_for_scratch_cleanup(pipeline)
    failures += [f"{path} left in scratch" for path in left]
    notes = [
        f"{scanned} object keys scanned, {len(bad_keys)} outside <tenant>/<slide_id>/",
        f"services alive, never restarted: {', '.join(sorted(watch.seen))}"
        if not watch.failures(pipeline)
        else "a service crashed or restarted",
    ]
    return failures, notes

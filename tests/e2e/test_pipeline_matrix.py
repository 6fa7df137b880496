"""Every sample layout, with and without a case manifest, through the whole running pipeline.

Uploaded with the partner CLI (``slidestream upload``) into the local stack and followed with
``slidestream status --wait qc`` as a partner would, each slide must end in the state the table
below expects, and the dead-letter topics must receive exactly the records that the expected
failures produce — nothing for a slide that should pass (a dead letter nobody looks at is how a
manifest that failed every conversion went unseen).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

import slidestream_samples as samples
from slidestream_contracts.reasons import REASONS
from slidestream_contracts.topics import SERVICES, dead_letter_topic
from tests.support.stack import Collector

pytestmark = pytest.mark.integration

SLIDESTREAM = Path(sys.executable).with_name("slidestream")
"""The partner CLI of this environment."""
SLIDESTREAM_TIMEOUT_S = 600
FIRST_SLIDE_TIMEOUT_S = 420
"""The first slide waits for every service's first work (imports, model of the tissue mask...)."""
NEXT_SLIDE_TIMEOUT_S = 180
QC_STATES = frozenset({"qc_passed", "qc_warned", "qc_failed"})

SLIDE_LAYOUTS = (
    "svs",
    "ndpi",
    "philips_tiff",
    "philips_tiff_4x",
    "ome_tiff",
    "leica_scn",
    "ventana_bif",
    "generic_tiff",
    "dicom_instance",
    "dicom_zip",
)
"""Every layout the samples generate; the DICOM series travels as one zip, or as a single
instance (its full-resolution level)."""


@dataclass(frozen=True, slots=True)
class Expected:
    """The state a slide must end in; ``dead_letter`` names the service that dead-letters it."""

    states: frozenset[str]
    reason: str | None = None
    dead_letter: str | None = None


REACHES_QC = Expected(QC_STATES)
EXPECTED_OTHERS: dict[str, Expected] = {
    "truncated_svs": Expected(frozenset({"failed:deid"}), "truncated-slide", dead_letter="deid"),
    "not_a_slide": Expected(frozenset({"rejected"}), "unsupported-format"),
}
EXPECTED_LAYOUTS: dict[str, Expected] = {
    # A generic TIFF without resolution tags says nothing of its pixel size, which DICOM needs.
    "generic_tiff": Expected(
        frozenset({"failed:convert"}), "missing-pixel-spacing", dead_letter="convert"
    ),
}
"""Inputs that must not reach QC, and how they must stop."""


EXPECTED = {**EXPECTED_LAYOUTS, **EXPECTED_OTHERS}
"""Every case that must not reach QC, and how it must stop (the rest reach QC)."""


def _layout_file(layout: str, work: Path, target: Path) -> Path:
    if layout.startswith("dicom"):
        series = samples.make_dicom_series(work)
        if layout == "dicom_instance":
            largest = max(series.files, key=lambda f: f.stat().st_size)
            return Path(largest.replace(target / f"{layout}.dcm"))
        archive_path = target / f"{layout}.zip"
        with zipfile.ZipFile(archive_path, "w") as archive:
            for file in series.files:
                archive.write(file, arcname=file.name)
        return archive_path
    planted = samples.LAYOUT_MAKERS[layout](work)
    return Path(planted.path.replace(target / f"{layout}{planted.path.suffix}"))


def _other_file(name: str, target: Path, work: Path) -> Path:
    if name == "not_a_slide":
        path = target / "not_a_slide.svs"
        path.write_text("A text file with a slide's extension.\n", encoding="utf-8")
        return path
    whole = samples.make_svs(work).path.read_bytes()
    path = target / "truncated_svs.svs"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _write_manifest(folder: Path) -> Path:
    """A full manifest: every known column, and an identifier the slides really carry."""
    manifest = folder.parent / f"{folder.name}.csv"
    with manifest.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "filename",
                "sha256",
                "case_id",
                "specimen_id",
                "species",
                "organ",
                "stain",
                "lab",
                "project",
            ]
        )
        for index, path in enumerate(sorted(folder.iterdir())):
            writer.writerow(
                [
                    path.name,
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    samples.TOKENS["accession"] if index % 2 == 0 else f"S26-{index:05d}",
                    f"{samples.TOKENS['specimen']}-{index}",
                    "human",
                    "colon",
                    "H&E",
                    "pathology-2",
                    "colon-study",
                ]
            )
    return manifest


def _cli(token: str, api: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SLIDESTREAM), *args, "--api", api, "--token", token, "--json"],
        capture_output=True,
        text=True,
        timeout=SLIDESTREAM_TIMEOUT_S,
        check=False,
    )


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.startswith("{"):
            yield json.loads(line)


@dataclass(frozen=True, slots=True)
class Outcome:
    case: str
    slide_id: str | None
    upload: dict[str, Any]
    status: dict[str, Any] | None


def _upload_and_follow(
    folder: Path, manifest: Path | None, token: str, api: str
) -> dict[str, Outcome]:
    args = ["upload", str(folder)] + (["--manifest", str(manifest)] if manifest else [])
    uploaded = _cli(token, api, *args)
    results = {Path(r["path"]).stem: r for r in _json_lines(uploaded.stdout)}
    assert len(results) == len(list(folder.iterdir())), uploaded.stderr[-3000:]
    outcomes: dict[str, Outcome] = {}
    timeout_s = FIRST_SLIDE_TIMEOUT_S
    for name, result in sorted(results.items()):
        slide_id = result.get("slide_id")
        status = None
        if slide_id:
            followed = _cli(
                token, api, "status", slide_id, "--wait", "qc", "--timeout", str(timeout_s)
            )
            status = next(_json_lines(followed.stdout), None)
            timeout_s = NEXT_SLIDE_TIMEOUT_S
        outcomes[name] = Outcome(name, slide_id, result, status)
    return outcomes


@dataclass
class MatrixRun:
    outcomes: dict[tuple[str, bool], Outcome]
    dead_letters: list[dict[str, Any]]


@pytest.fixture(scope="module")
def matrix(
    stack_env: dict[str, str], e2e_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MatrixRun]:
    """Upload every case twice (no manifest, full manifest), follow each to QC, and collect
    every dead letter published meanwhile."""
    root = tmp_path_factory.mktemp("e2e")
    folders: dict[bool, Path] = {}
    for with_manifest in (False, True):
        folder = root / ("with-manifest" if with_manifest else "without-manifest")
        folder.mkdir()
        for layout in SLIDE_LAYOUTS:
            work = root / "work" / f"{folder.name}-{layout}"
            work.mkdir(parents=True)
            _layout_file(layout, work, folder)
        for name in EXPECTED_OTHERS:
            work = root / "work" / f"{folder.name}-{name}"
            work.mkdir(parents=True)
            _other_file(name, folder, work)
        folders[with_manifest] = folder
    collector = Collector(stack_env["KAFKA_BOOTSTRAP"], [dead_letter_topic(s) for s in SERVICES])
    loop = asyncio.new_event_loop()
    loop.run_until_complete(collector.start())
    try:
        outcomes: dict[tuple[str, bool], Outcome] = {}
        for with_manifest, folder in folders.items():
            manifest = _write_manifest(folder) if with_manifest else None
            followed = _upload_and_follow(folder, manifest, e2e_token, stack_env["UPLOAD_API"])
            outcomes.update({(name, with_manifest): o for name, o in followed.items()})
        loop.run_until_complete(collector.settle(3.0))
        yield MatrixRun(outcomes, [r.value | {"_topic": r.topic} for r in collector.records])
    finally:
        loop.run_until_complete(collector.stop())
        loop.close()


CASES = [(name, m) for m in (False, True) for name in (*SLIDE_LAYOUTS, *EXPECTED_OTHERS)]


@pytest.mark.parametrize(("case", "with_manifest"), CASES)
def test_each_slide_ends_where_expected(matrix: MatrixRun, case: str, with_manifest: bool) -> None:
    outcome = matrix.outcomes[(case, with_manifest)]
    expected = EXPECTED.get(case, REACHES_QC)
    assert outcome.status is not None, outcome.upload
    assert outcome.status["state"] in expected.states, outcome.status
    if expected.reason is not None:
        assert outcome.status["reason"] == expected.reason, outcome.status
    if outcome.status["state"] not in QC_STATES:
        # A slide that stopped says why in words and what to do, never in class names.
        words = REASONS[outcome.status["reason"]]
        assert outcome.status["action"] == words.action
        assert "Error" not in outcome.status.get("detail", "")


def test_dead_letters_are_exactly_the_expected_ones(matrix: MatrixRun) -> None:
    ours = {
        UUID(o.slide_id): (case, manifest)
        for (case, manifest), o in matrix.outcomes.items()
        if o.slide_id
    }
    received = {}
    for record in matrix.dead_letters:
        slide_id = record.get("slide_id")
        if slide_id and UUID(slide_id) in ours:
            received[ours[UUID(slide_id)]] = (record["service"], record["error_message"][:300])
    expected = {
        (case, manifest): expectation.dead_letter
        for (case, manifest) in matrix.outcomes
        if (expectation := EXPECTED.get(case)) and expectation.dead_letter
    }
    assert {key: service for key, (service, _) in received.items()} == expected, received

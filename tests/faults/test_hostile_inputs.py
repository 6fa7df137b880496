"""Scenarios (m) and (n): hostile inputs uploaded like slides, by the partner path (the SDK over
tusd), among good slides.

(m) bombs and lying files: a TIFF declaring 16 terapixels, a TIFF whose one tile is a deflate
bomb, a zip member compressed 1000:1, a zip of 100 001 members, a slide cut at 50 %, a TIFF whose
tile lies past its end, a DICOM frame longer than the file, a PNG named ``.svs`` and a PDF named
``.tiff``. (n) hostile names and archives: good slides sent as ``../../etc/passwd.svs``, an
absolute path, NUL and control characters, 1000 characters, an RTL override, shell
metacharacters, two names equal after NFC normalisation; zips with ``../`` and absolute members,
a symlink member, two members of one name, a member that is both a file and a folder, a member
name too long for the file system, a ``./`` member, a zip in a zip.

Each good slide must reach QC and each hostile input end once in the state its code path gives
it — refused by the upload service, or dead-lettered by deid — with the reason code expected;
no service process may crash or restart; every object key stays under ``<tenant>/<slide_id>/``
(MinIO scanned directly), no file is written outside the services' scratch folders, and a
client's file name is kept only made harmless. Invariants 1-4 hold.
"""

from __future__ import annotations

import time

import pytest

from slidestream_samples.dicom import make_dicom_series
from tests.support.faults.batch import make_slides
from tests.support.faults.hostile import (
    Hostile,
    ServiceWatch,
    archive_inputs,
    bomb_inputs,
    escape_names,
    expect_hostile,
    harm_failures,
    named_inputs,
)
from tests.support.faults.scenario import Run, ScenarioResult
from tests.support.faults.stack import FaultStack

pytestmark = [pytest.mark.faults]

GOOD_SLIDES = 2
UPLOAD_TIMEOUT_S = 420.0
END_TIMEOUT_S = 600.0


def _finish(
    run: Run,
    result: ScenarioResult,
    hostile: dict[str, Hostile],
    watch: ServiceWatch,
    since: float,
    escape: list[str],
) -> None:
    result.in_flight = run.in_flight()
    result.notes.append(
        "; ".join(f"{h.label} → {h.expected} {h.reason}".strip() for h in hostile.values())
    )
    ledger = run.wait_until_ended(END_TIMEOUT_S)
    run.judge(result, ledger, fault_ended=None)
    failures, notes = harm_failures(run, hostile, watch, since, escape)
    result.failures += failures
    result.notes += notes
    result.save()
    assert not result.failures, "\n".join(result.failures)


@pytest.mark.quick
@pytest.mark.timeout(1500)
def test_bombs_and_lying_files_end_alone_and_harm_nothing(stack: FaultStack) -> None:
    run = Run(stack, "bombs")
    watch, since = ServiceWatch.of(stack.pipeline), time.time()
    result = ScenarioResult(
        scenario="m-bombs",
        title="Bombs, truncated and lying files uploaded",
        injected=(
            "9 hostile files uploaded through tusd among 2 good slides: TIFF bomb (4M x 4M px), "
            "deflate bomb tile (100k px), zip 1000:1, zip of 100 001 members, slide cut at "
            "50 %, tile offset past EOF, DICOM frame past EOF, PNG named .svs, PDF named .tiff"
        ),
        checked=(
            "good slides reach QC; each hostile file rejected at upload or dead-lettered by deid "
            "once, with its reason code; no service crashed or restarted; keys under "
            "<tenant>/<slide_id>/; nothing written outside scratch"
        ),
    )
    folder = stack.run_dir / "slides" / "bombs-inputs"
    reference = make_slides(stack.run_dir / "slides" / "reference", 1, first_seed=999)[0]
    series = make_dicom_series(folder)
    inputs = bomb_inputs(folder, reference, series.files[0])
    batch = run.upload(GOOD_SLIDES, first_seed=300, extra=[item.path for item in inputs])
    hostile = expect_hostile(run, batch, UPLOAD_TIMEOUT_S, inputs)
    _finish(run, result, hostile, watch, since, [])


@pytest.mark.timeout(1500)
def test_hostile_names_and_archives_stay_in_their_place(stack: FaultStack) -> None:
    run = Run(stack, "names")
    token = run.tenant.rsplit("-", 1)[1]
    watch, since = ServiceWatch.of(stack.pipeline), time.time()
    result = ScenarioResult(
        scenario="n-hostile-names",
        title="Hostile file names and archives uploaded",
        injected=(
            "10 good slides sent under hostile names (../../etc/passwd.svs, absolute, Windows "
            "traversal, NUL/control characters, 1000 characters, RTL override, shell "
            "metacharacters, '..', an NFC/NFD pair) and 8 hostile zips (../ member, absolute "
            "member, symlink member, duplicate members, a member both file and folder, a 300-byte "
            "member name, a ./ member, a zip in a zip) among 2 good slides"
        ),
        checked=(
            "named slides reach QC under their own slide id with a harmless name; each zip "
            "rejected at upload or dead-lettered by deid with its reason; MinIO keys under "
            "<tenant>/<slide_id>/; no escape target exists, nothing written outside scratch; "
            "no service crashed or restarted"
        ),
    )
    folder = stack.run_dir / "slides" / "names-inputs"
    named = named_inputs(make_slides(folder / "named", 10, first_seed=320), token)
    archives = archive_inputs(folder, make_dicom_series(folder).files[0], token)
    inputs = named + archives
    batch = run.upload(
        GOOD_SLIDES,
        first_seed=340,
        extra=[item.path for item in inputs],
        names={item.path: item.sent_name for item in named if item.sent_name is not None},
    )
    hostile = expect_hostile(run, batch, UPLOAD_TIMEOUT_S, inputs)
    ids = [slide_id for slide_id, item in hostile.items() if item.label.startswith("NF")]
    assert len(set(ids)) == 2, f"the NFC/NFD pair shares a slide: {ids}"
    _finish(run, result, hostile, watch, since, escape_names(token))

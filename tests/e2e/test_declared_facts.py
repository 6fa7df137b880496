"""Issue 18: what a file lacks, the partner states. A generic TIFF without resolution tags and a
single-frame DICOM without Pixel Spacing reach QC with the spacing given at upload (``--meta``,
a manifest column), converted at that spacing; a slide that already failed for the lack of it is
fixed once (``slidestream slides fix``) and reaches QC; a spacing in another unit is refused at
upload, naming the field, by the CLI and by the server."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

import slidestream_samples as samples
from slidestream_contracts.topics import Topic
from tests.support.single_frame_dicom import write_single_frame_dicom
from tests.support.stack import Collector
from tests.support.upload import metadata_header

pytestmark = pytest.mark.integration

SLIDESTREAM = Path(sys.executable).with_name("slidestream")
CLI_TIMEOUT_S = 900
QC_TIMEOUT_S = 420
QC_STATES = frozenset({"qc_passed", "qc_warned", "qc_failed"})


def _cli(token: str, api: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SLIDESTREAM), *args, "--api", api, "--token", token, "--json"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def _first_json(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.startswith("{"):
            parsed = json.loads(line)
            assert isinstance(parsed, dict)
            return parsed
    raise AssertionError(f"no JSON line in {text[-2000:]!r}")


@dataclass(frozen=True, slots=True)
class Followed:
    slide_id: str
    status: dict[str, Any]
    converted: dict[str, Any]


def _upload_and_follow(
    token: str, api: str, collector: Collector, loop: asyncio.AbstractEventLoop, *args: str
) -> Followed:
    uploaded = _first_json(_cli(token, api, "upload", *args).stdout)
    slide_id = uploaded.get("slide_id")
    assert slide_id and uploaded["status"] == "uploaded", uploaded
    status = _first_json(
        _cli(token, api, "status", slide_id, "--wait", "qc", "--timeout", str(QC_TIMEOUT_S)).stdout
    )
    loop.run_until_complete(
        collector.wait_for(
            lambda: bool(collector.of(UUID(slide_id), Topic.SLIDES_CONVERTED.value)),
            timeout_s=30,
            what="the converted event",
        )
    )
    records = collector.of(UUID(slide_id), Topic.SLIDES_CONVERTED.value)
    return Followed(slide_id, status, records[0].value)


@pytest.fixture(scope="module")
def followed(
    stack_env: dict[str, str], e2e_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Followed]]:
    root = tmp_path_factory.mktemp("declared")
    (root / "tiff-work").mkdir()
    tiff = samples.LAYOUT_MAKERS["generic_tiff"](root / "tiff-work").path
    dicom_folder = root / "dicom"
    dicom = write_single_frame_dicom(root / "dicom-work", dicom_folder / "single-frame.dcm")
    manifest = root / "dicom.csv"
    with manifest.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["filename", "sha256", "mpp_um", "objective_power"])
        writer.writerow(
            [dicom.name, hashlib.sha256(dicom.read_bytes()).hexdigest(), "0.5 µm", "20x"]
        )
    api = stack_env["UPLOAD_API"]
    collector = Collector(stack_env["KAFKA_BOOTSTRAP"], [Topic.SLIDES_CONVERTED.value])
    loop = asyncio.new_event_loop()
    loop.run_until_complete(collector.start())
    try:
        yield {
            "generic_tiff": _upload_and_follow(
                e2e_token, api, collector, loop, str(tiff), "--meta", "mpp_um=0.25"
            ),
            "single_frame_dicom": _upload_and_follow(
                e2e_token, api, collector, loop, str(dicom_folder), "--manifest", str(manifest)
            ),
        }
    finally:
        loop.run_until_complete(collector.stop())
        loop.close()


@pytest.mark.parametrize(("case", "mpp_um"), [("generic_tiff", 0.25), ("single_frame_dicom", 0.5)])
def test_a_slide_without_spacing_reaches_qc_at_the_declared_one(
    followed: dict[str, Followed], case: str, mpp_um: float
) -> None:
    slide = followed[case]
    assert slide.status["state"] in QC_STATES, slide.status
    level0 = min(slide.converted["levels"], key=lambda level: level["index"])
    assert (level0["mpp_x"], level0["mpp_y"]) == (pytest.approx(mpp_um), pytest.approx(mpp_um))
    assert slide.converted["spacing_declared"] is True
    assert slide.converted["declared"]["mpp_um"] == pytest.approx(mpp_um)


def test_a_spacing_in_a_wrong_unit_is_refused_by_the_cli_naming_the_field(
    stack_env: dict[str, str], e2e_token: str, tmp_path: Path
) -> None:
    slide = tmp_path / "plain.tiff"
    slide.write_bytes(b"II*\x00" + bytes(100))
    refused = _cli(
        e2e_token, stack_env["UPLOAD_API"], "upload", str(slide), "--meta", "mpp_um=250nm"
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "mpp_um: unit 'nm' is not accepted" in refused.stderr


def test_a_spacing_in_a_wrong_unit_is_refused_by_the_server_naming_the_field(
    stack_env: dict[str, str], e2e_token: str
) -> None:
    """A client that is not ours (tus-js-client, a script) meets the same rule at creation."""
    body = b"II*\x00" + bytes(100)
    metadata = {
        "filename": "plain.tiff",
        "sha256": hashlib.sha256(body).hexdigest(),
        "meta": json.dumps({"mpp_um": "0.00025 mm"}),
    }
    header = metadata_header(**metadata)
    answer = httpx.post(
        stack_env["TUS_URL"],
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(body)),
            "Upload-Metadata": header,
            "Authorization": f"Bearer {e2e_token}",
        },
        timeout=30,
    )
    assert answer.status_code == 422, answer.text
    refusal = json.loads(answer.text)
    assert (refusal["reason"], refusal["field"]) == ("invalid-slide-facts", "mpp_um")
    assert "unit 'mm' is not accepted" in refusal["message"]


def test_a_slide_failed_for_its_spacing_is_fixed_once_and_reaches_qc(
    stack_env: dict[str, str], e2e_token: str, tmp_path: Path
) -> None:
    api = stack_env["UPLOAD_API"]
    tiff = samples.LAYOUT_MAKERS["generic_tiff"](tmp_path).path
    uploaded = _first_json(_cli(e2e_token, api, "upload", str(tiff)).stdout)
    slide_id = str(uploaded["slide_id"])
    wait = ("status", slide_id, "--wait", "qc", "--timeout", str(QC_TIMEOUT_S))
    failed = _first_json(_cli(e2e_token, api, *wait).stdout)
    assert (failed["state"], failed["reason"]) == ("failed:convert", "missing-pixel-spacing")
    assert "slidestream slides fix" in str(failed["action"])  # status says what to do

    fixed = _cli(e2e_token, api, "slides", "fix", slide_id, "--mpp-um", "0.25")
    assert fixed.returncode == 0, fixed.stderr
    assert _first_json(fixed.stdout)["declared"] == {"mpp_um": 0.25}
    followed = _first_json(_cli(e2e_token, api, *wait).stdout)
    assert followed["state"] in QC_STATES, followed

    again = _cli(e2e_token, api, "slides", "fix", slide_id, "--mpp-um", "0.25")
    assert again.returncode == 1
    assert _first_json(again.stdout)["reason"] in ("already-fixed", "not-failed")

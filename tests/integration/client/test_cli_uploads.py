"""``slidestream upload`` / ``status`` as a partner runs them: a subprocess against the real
upload API, tusd and MinIO of the local stack."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from slidestream_client.models import UploadState
from slidestream_client.sdk import SlidestreamClient
from slidestream_client.state import UploadRecord
from tests.support.upload import events_for

from .conftest import SLIDESTREAM

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
TIFF_MAGIC = b"II*\x00"
"""The upload service accepts only slide containers (it sniffs TIFF/BigTIFF/DICOM/zip)."""
BIG_FILE_BYTES = 1024 * MIB
KILL_AT_FRACTION = 0.40
CLI_TIMEOUT_S = 600


def run_cli(
    args: list[str], api: str, token: str, *, timeout_s: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SLIDESTREAM), *args],
        env=cli_env(api, token),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def cli_env(api: str, token: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()  # noqa: TID251 - a child process environment
        if not key.startswith("SLIDESTREAM_")
    }
    env.update(SLIDESTREAM_API=api, SLIDESTREAM_TOKEN=token, COLUMNS="200")
    return env


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def slide_file(path: Path, size_bytes: int, seed: int) -> Path:
    path.write_bytes(TIFF_MAGIC + random.Random(seed).randbytes(size_bytes - len(TIFF_MAGIC)))
    return path


def sparse_slide(path: Path, size_bytes: int) -> str:
    """A sparse file (4 KiB of disk per MiB) with random blocks, so that bytes resumed at a
    wrong offset change its digest; returns its sha256."""
    rng = random.Random(42)
    with path.open("wb") as handle:
        handle.truncate(size_bytes)
        for offset in range(0, size_bytes, MIB):
            handle.seek(offset)
            handle.write(rng.randbytes(4096))
        handle.seek(0)
        handle.write(TIFF_MAGIC)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def recorded_upload(state_dir: Path) -> UploadRecord | None:
    for path in (state_dir / "uploads").glob("*.json"):
        record = UploadRecord.model_validate_json(path.read_text())
        if record.slide_id and record.url:
            return record
    return None


def test_resume_after_kill_9(
    upload_api: str, client_token: str, tmp_path: Path, stack_env: dict[str, str]
) -> None:
    big = tmp_path / "big.tif"
    state_dir = tmp_path / "state"
    expected_sha256 = sparse_slide(big, BIG_FILE_BYTES)
    args = ["upload", str(big), "--json", "--state-dir", str(state_dir)]
    try:
        first = subprocess.Popen(
            [str(SLIDESTREAM), *args],
            env=cli_env(upload_api, client_token),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        with SlidestreamClient(upload_api, client_token) as client:
            received = 0
            deadline = time.monotonic() + CLI_TIMEOUT_S
            record = None
            while received < KILL_AT_FRACTION * BIG_FILE_BYTES:
                assert first.poll() is None, "the upload finished before it could be killed"
                assert time.monotonic() < deadline, "the upload did not progress"
                record = record or recorded_upload(state_dir)
                if record is not None and record.slide_id is not None:
                    received = client.upload_status(record.slide_id).received_bytes
                time.sleep(0.1)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            assert record is not None and record.slide_id is not None
            slide_id = record.slide_id

            # Still receiving: waiting for the upload stage times out (exit code 2).
            waiting = run_cli(
                ["status", slide_id, "--wait", "uploaded", "--timeout", "2", "--json"],
                upload_api,
                client_token,
            )
            assert waiting.returncode == 2, waiting.stderr
            assert json.loads(waiting.stdout)["state"] is None

            second = run_cli(args, upload_api, client_token)
            assert second.returncode == 0, second.stderr[-3000:]
            (line,) = json_lines(second.stdout)
            assert line["slide_id"] == slide_id
            assert line["status"] == "uploaded"
            assert line["sha256"] == expected_sha256
            resumed_from = int(str(line["resumed_from_bytes"]))
            sent = int(str(line["bytes_sent"]))
            print(f"killed at {received} bytes received; resumed at {resumed_from}, sent {sent}")
            assert resumed_from > 0
            assert resumed_from + sent == BIG_FILE_BYTES
            assert sent < 0.70 * BIG_FILE_BYTES
            # The server hashed the stored object and found the declared sha256.
            assert line["upload_state"] == "published"
            upload = client.upload_status(slide_id)
            assert upload.state is UploadState.PUBLISHED
            assert upload.received_bytes == upload.size_bytes == BIG_FILE_BYTES
            # Killed, resumed, and still exactly one slides.uploaded.v1 with the file's digest.
            events = asyncio.run(
                events_for(stack_env["KAFKA_BOOTSTRAP"], "slides.uploaded.v1", slide_id)
            )
            assert [event["original"]["sha256"] for event in events] == [expected_sha256]
    finally:
        big.unlink(missing_ok=True)


def test_directory_in_parallel(upload_api: str, client_token: str, tmp_path: Path) -> None:
    folder = tmp_path / "slides"
    (folder / "sub").mkdir(parents=True)
    for seed, name in enumerate(("a.tif", "b.tif", "sub/c.tif")):
        slide_file(folder / name, 2 * MIB + seed, seed)
    (folder / ".hidden.tif").write_bytes(TIFF_MAGIC)
    state = ["--state-dir", str(tmp_path / "state")]
    result = run_cli(
        ["upload", str(folder), "--json", "--parallel", "3", "--meta", "study=S1", *state],
        upload_api,
        client_token,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = json_lines(result.stdout)
    assert sorted(Path(str(line["path"])).name for line in lines) == ["a.tif", "b.tif", "c.tif"]
    assert all(line["status"] == "uploaded" and line["error"] is None for line in lines)
    assert all(line["upload_state"] == "published" for line in lines)
    assert len({line["slide_id"] for line in lines}) == 3

    slide_id = str(lines[0]["slide_id"])
    reached = run_cli(
        ["status", slide_id, "--wait", "uploaded", "--timeout", "120", "--json"],
        upload_api,
        client_token,
    )
    assert reached.returncode == 0, reached.stdout + reached.stderr
    data = json.loads(reached.stdout)
    assert data["slide_id"] == slide_id
    assert data["state"] is not None and data["outcome"] == "reached"
    plain = run_cli(["status", slide_id], upload_api, client_token)
    assert plain.returncode == 0
    assert slide_id in plain.stdout


def test_rejected_file_fails_and_status_stops(
    upload_api: str, client_token: str, tmp_path: Path
) -> None:
    not_a_slide = tmp_path / "notes.txt"
    not_a_slide.write_bytes(b"not a slide\n" * 1000)
    result = run_cli(
        ["upload", str(not_a_slide), "--state-dir", str(tmp_path / "state")],
        upload_api,
        client_token,
    )
    assert result.returncode == 1
    assert "failed" in result.stdout
    assert "not a TIFF" in result.stdout  # the server's reason, in the summary table
    with SlidestreamClient(upload_api, client_token, state_dir=tmp_path / "state") as client:
        # The table's slide id column may be folded; take it from the state directory.
        record = recorded_upload(tmp_path / "state")
        assert record is not None and record.slide_id is not None
        assert client.upload_status(record.slide_id).reason == "unsupported-format"
    stopped = run_cli(
        ["status", record.slide_id, "--wait", "uploaded", "--timeout", "120", "--json"],
        upload_api,
        client_token,
    )
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    data = json.loads(stopped.stdout)
    assert (data["state"], data["step"], data["outcome"]) == ("rejected", "upload", "stopped")
    assert data["reason"] == "unsupported-format"


def test_manifest_batch_and_rerun(upload_api: str, client_token: str, tmp_path: Path) -> None:
    slide = slide_file(tmp_path / "one.tif", MIB, 7)
    digest = hashlib.sha256(slide.read_bytes()).hexdigest()
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        f"filename,sha256,case_id,stain\none.tif,{digest},C-1,HE\ntwo.tif,{'0' * 64},C-2,HE\n"
    )
    args = ["upload", str(slide), "--manifest", str(manifest), "--state-dir", str(tmp_path / "s")]
    first = run_cli([*args, "--json"], upload_api, client_token)
    assert first.returncode == 0, first.stderr[-3000:]
    (line,) = json_lines(first.stdout)
    batch_id = str(line["batch_id"])
    with SlidestreamClient(upload_api, client_token) as client:
        report = client.batch(batch_id)
    assert report.rows == 2
    assert report.matched == ["one.tif"]
    assert report.missing == ["two.tif"]
    assert not report.complete
    # A rerun reuses the batch and sends nothing: the upload is already complete.
    again = run_cli(args, upload_api, client_token)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already uploaded" in again.stdout
    assert f"batch {batch_id}" in again.stdout
    assert "missing: two.tif" in again.stdout


def test_bad_manifest_is_explained(upload_api: str, client_token: str, tmp_path: Path) -> None:
    slide = slide_file(tmp_path / "one.tif", 1000, 8)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("filename,sha256\none.tif,nothex\n")
    result = run_cli(
        ["upload", str(slide), "--manifest", str(manifest), "--state-dir", str(tmp_path / "s")],
        upload_api,
        client_token,
    )
    assert result.returncode == 1
    assert "manifest was refused" in result.stderr
    assert "sha256" in result.stderr


def test_wrong_token_is_refused(upload_api: str, tmp_path: Path) -> None:
    slide = slide_file(tmp_path / "one.tif", 1000, 9)
    bogus = "ss_" + uuid.uuid4().hex
    human = run_cli(["upload", str(slide), "--state-dir", str(tmp_path / "s")], upload_api, bogus)
    assert human.returncode == 1
    assert "refused the token" in human.stderr
    assert bogus not in human.stdout + human.stderr
    machine = run_cli(
        ["upload", str(slide), "--json", "--state-dir", str(tmp_path / "s")], upload_api, bogus
    )
    assert machine.returncode == 1
    (line,) = json_lines(machine.stdout)
    assert (line["status"], line["reason"]) == ("failed", "unauthorized")
    status = run_cli(["status", str(uuid.uuid4()), "--json"], upload_api, bogus)
    assert status.returncode == 3


def test_status_of_an_unknown_slide(upload_api: str, client_token: str) -> None:
    result = run_cli(
        ["status", str(uuid.uuid4()), "--wait", "uploaded", "--json"], upload_api, client_token
    )
    assert result.returncode == 3
    assert json.loads(result.stdout)["reason"] == "not-found"

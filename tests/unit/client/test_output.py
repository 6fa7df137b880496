"""Exit codes, JSON output and error descriptions."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from slidestream_client.errors import (
    ApiConnectionError,
    AuthenticationError,
    ManifestRefusedError,
    NotFoundError,
    UploadCancelledError,
    UploadFailedError,
    UploadRefusedError,
    UploadRejectedError,
    error_from_response,
)
from slidestream_client.models import SlideStatus, UploadResult
from slidestream_client.output import (
    ExitCode,
    describe_state,
    failed_result,
    human_bytes,
    json_line,
    status_json,
    summary_table,
    wait_exit_code,
    what_to_do,
)
from slidestream_contracts.reasons import REASONS, UNKNOWN_REASON
from slidestream_contracts.states import SlideState, Stage, Step, WaitOutcome


def test_wait_exit_codes() -> None:
    assert wait_exit_code(WaitOutcome.REACHED) == 0
    assert wait_exit_code(WaitOutcome.STOPPED) == 1
    assert wait_exit_code(WaitOutcome.PENDING) == 2
    assert {o: wait_exit_code(o) for o in WaitOutcome}.keys() == set(WaitOutcome)
    assert ExitCode.ERROR == 3


@pytest.mark.parametrize(
    ("state", "step", "stage", "outcome"),
    [
        (None, None, Stage.UPLOADED, WaitOutcome.PENDING),
        (SlideState.UPLOADED, Step.UPLOAD, Stage.UPLOADED, WaitOutcome.REACHED),
        (SlideState.QC_FAILED, Step.QC, Stage.QC, WaitOutcome.REACHED),
        (SlideState.REJECTED, Step.UPLOAD, Stage.UPLOADED, WaitOutcome.STOPPED),
        (SlideState.REJECTED, Step.DEID, Stage.UPLOADED, WaitOutcome.REACHED),
        (SlideState.REJECTED, Step.DEID, Stage.DEIDENTIFIED, WaitOutcome.STOPPED),
        (SlideState.FAILED_CONVERT, Step.CONVERT, Stage.QC, WaitOutcome.STOPPED),
        (SlideState.CONVERTED, Step.CONVERT, Stage.QC, WaitOutcome.PENDING),
    ],
)
def test_slide_outcome(
    state: SlideState | None, step: Step | None, stage: Stage, outcome: WaitOutcome
) -> None:
    status = SlideStatus(slide_id="s", state=state, step=step)
    assert status.outcome(stage) is outcome


def test_status_json_fields() -> None:
    status = SlideStatus.model_validate(
        {
            "slide_id": "s1",
            "state": "rejected",
            "step": "deid",
            "reason": "residual-phi",
            "detail": "label text",
            "updated_at": "2026-01-01T00:00:00Z",
            "upload_state": "published",
            "future_field": 1,
        }
    )
    data = status_json(status, outcome=WaitOutcome.STOPPED)
    assert data["state"] == "rejected"
    assert data["step"] == "deid"
    assert data["reason"] == "residual-phi"
    assert data["slide_id"] == "s1"
    assert data["outcome"] == "stopped"
    assert describe_state(status) == "rejected (by deid): label text"
    pending = status_json(SlideStatus(slide_id="s2"))
    assert pending["state"] is None
    assert "reason" not in pending
    assert describe_state(SlideStatus(slide_id="s2")) == "upload pending"


def test_a_failed_slide_is_described_in_words_with_what_to_do() -> None:
    """A status from before the words existed (only a code) still reads as a sentence."""
    failed = SlideStatus(
        slide_id="s3", state="failed:convert", step="convert", reason="conformance-failed"
    )
    words = REASONS["conformance-failed"]
    assert describe_state(failed) == f"failed:convert (by convert): {words.summary}"
    assert what_to_do(failed) == words.action
    assert status_json(failed)["action"] == words.action
    unknown = SlideStatus(slide_id="s4", state="failed:qc", step="qc", reason="new-code")
    assert what_to_do(unknown) == UNKNOWN_REASON.action
    assert what_to_do(SlideStatus(slide_id="s5", state="qc_passed", step="qc")) is None


def test_upload_result_json_line() -> None:
    result = UploadResult(
        path=Path("/d/a.svs"), filename="a.svs", size_bytes=5, status="uploaded", slide_id="s1"
    )
    data = json.loads(json_line(result.to_json()))
    assert {"path", "slide_id", "status", "error"} <= data.keys()
    assert (data["path"], data["status"], data["error"]) == ("/d/a.svs", "uploaded", None)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (AuthenticationError(401, "x", "m"), "unauthorized"),
        (UploadRefusedError(413, "quota-exceeded", "m"), "quota-exceeded"),
        (UploadRejectedError("s", "checksum-mismatch", "d"), "checksum-mismatch"),
        (ApiConnectionError("down"), "unreachable"),
        (UploadCancelledError("x"), "interrupted"),
        (UploadFailedError("x"), "transfer-failed"),
        (PermissionError(13, "Permission denied", "/d/a"), "unreadable"),
    ],
)
def test_failed_results(error: Exception, reason: str, tmp_path: Path) -> None:
    result = failed_result(tmp_path / "gone.svs", error)
    assert result.status == "failed"
    assert result.reason == reason
    assert result.error
    assert result.size_bytes == 0


def test_failed_result_keeps_the_slide_id() -> None:
    error = UploadRejectedError("s9", "checksum-mismatch", "differs")
    result = failed_result(Path("/x"), error, size_bytes=3)
    assert (result.slide_id, result.upload_state, result.error) == ("s9", "rejected", "differs")


def _response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", "http://x/"))


def test_error_mapping_shows_the_server_message() -> None:
    refused = error_from_response(
        _response(413, {"reason": "too-large", "message": "exceeds 20 GiB"}),
        refused=UploadRefusedError,
    )
    assert isinstance(refused, UploadRefusedError)
    assert (refused.reason, refused.message) == ("too-large", "exceeds 20 GiB")
    assert isinstance(error_from_response(_response(401, {})), AuthenticationError)
    assert isinstance(error_from_response(_response(404, {"detail": "nope"})), NotFoundError)
    manifest = error_from_response(
        _response(400, {"reason": "bad-manifest", "message": "row 3: sha256"}),
        refused=ManifestRefusedError,
    )
    assert isinstance(manifest, ManifestRefusedError)
    assert str(manifest) == "row 3: sha256"
    nested = error_from_response(_response(404, {"detail": {"reason": "gone", "message": "m"}}))
    assert (nested.reason, nested.message) == ("gone", "m")
    plain = error_from_response(
        httpx.Response(502, text="bad gateway", request=httpx.Request("GET", "http://x/"))
    )
    assert (plain.status_code, plain.reason, plain.message) == (502, "http-502", "bad gateway")


def test_human_bytes_and_table() -> None:
    assert human_bytes(5) == "5 B"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
    table = summary_table(
        [
            UploadResult(path=Path("/a"), filename="a", size_bytes=1, status="uploaded"),
            UploadResult(
                path=Path("/b"), filename="b", size_bytes=1, status="failed", error="boom"
            ),
        ]
    )
    assert table.row_count == 2

"""How results are shown: exit codes, JSON lines, the summary table."""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from pathlib import Path

from pydantic import ValidationError
from rich.table import Table

from slidestream_client.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    SlidestreamError,
    UploadCancelledError,
    UploadFailedError,
    UploadRejectedError,
)
from slidestream_client.models import SlideStatus, UploadResult, UploadState
from slidestream_contracts.reasons import explain
from slidestream_contracts.states import WaitOutcome


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    """``upload``: a file failed. ``status --wait``: the slide stopped before the stage."""
    TIMEOUT = 2
    """``status --wait``: the stage was not reached in time (also click's usage-error code)."""
    ERROR = 3
    """``status``: the server could not be asked (token refused, no such slide, unreachable)."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT, the shell convention)."""


USAGE_ERROR = 2
"""click's code for bad options; ``upload`` also uses it for missing paths or bad ``--meta``."""

PER_FILE_ERRORS = (SlidestreamError, OSError, ValidationError)
"""What fails one file without stopping the others (ValidationError: an unexpected answer)."""


def write_stdout_line(line: str) -> None:
    """One line on stdout, flushed at once: a JSON line reaches a reading pipe as it happens."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_exit_code(outcome: WaitOutcome) -> ExitCode:
    return {
        WaitOutcome.REACHED: ExitCode.OK,
        WaitOutcome.STOPPED: ExitCode.FAILED,
        WaitOutcome.PENDING: ExitCode.TIMEOUT,
    }[outcome]


def error_reason(error: BaseException) -> str:
    """A short, stable reason code for an error (the ``reason`` of a failed JSON line)."""
    if isinstance(error, AuthenticationError):
        return "unauthorized"
    if isinstance(error, UploadRejectedError):
        return error.reason or "rejected"
    if isinstance(error, ApiError):
        return error.reason
    if isinstance(error, ApiConnectionError):
        return "unreachable"
    if isinstance(error, UploadCancelledError):
        return "interrupted"
    if isinstance(error, UploadFailedError):
        return "transfer-failed"
    if isinstance(error, OSError):
        return "unreadable"
    return "error"


def error_message(error: BaseException) -> str:
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    return str(error) or type(error).__name__


def failed_result(
    path: Path,
    error: BaseException,
    *,
    size_bytes: int | None = None,
    batch_id: str | None = None,
) -> UploadResult:
    if size_bytes is None:
        try:
            size_bytes = path.stat().st_size
        except OSError:
            size_bytes = 0
    slide_id = error.slide_id if isinstance(error, SlidestreamError) else None
    return UploadResult(
        path=path,
        filename=path.name,
        size_bytes=size_bytes,
        status="failed",
        slide_id=slide_id,
        upload_state=UploadState.REJECTED if isinstance(error, UploadRejectedError) else None,
        reason=error_reason(error),
        error=error_message(error),
        batch_id=batch_id,
    )


def json_line(data: dict[str, object]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def status_json(status: SlideStatus, *, outcome: WaitOutcome | None = None) -> dict[str, object]:
    data: dict[str, object] = {
        "slide_id": status.slide_id,
        "state": status.state.value if status.state else None,
        "step": status.step.value if status.step else None,
        "upload_state": status.upload_state.value if status.upload_state else None,
    }
    if status.reason:
        data["reason"] = status.reason
    if status.detail:
        data["detail"] = status.detail
    action = what_to_do(status)
    if action:
        data["action"] = action
    if status.updated_at:
        data["updated_at"] = status.updated_at.isoformat()
    if outcome is not None:
        data["outcome"] = outcome.value
    return data


def describe_state(status: SlideStatus) -> str:
    """One line for people: the state, who set it and why (in words, not codes)."""
    if status.state is None:
        upload = status.upload_state.value if status.upload_state else "pending"
        return f"upload {upload}"
    text = status.state.value
    if status.step:
        text += f" (by {status.step.value})"
    words = explain(status.reason)
    why = status.detail or (words.summary if words else "")
    if why:
        text += f": {why}"
    return text


def what_to_do(status: SlideStatus) -> str | None:
    """What the partner can do about a slide that stopped or was judged with a reason."""
    words = explain(status.reason)
    return words.action if words else None


def human_bytes(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def summary_table(results: list[UploadResult]) -> Table:
    table = Table(title="uploads", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("slide id", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for result in results:
        if result.status == "uploaded":
            status = "[green]uploaded[/]"
            notes = []
            if result.resumed_from_bytes:
                notes.append(
                    "already uploaded"
                    if result.resumed_from_bytes >= result.size_bytes
                    else f"resumed at {human_bytes(result.resumed_from_bytes)}"
                )
            if result.reason:
                notes.append(result.reason)
            reason = ", ".join(notes)
        else:
            status = "[red]failed[/]"
            reason = result.error or result.reason or ""
        table.add_row(
            str(result.path),
            result.slide_id or "-",
            human_bytes(result.size_bytes),
            status,
            reason,
        )
    return table

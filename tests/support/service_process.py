"""A slidestream service run as a real process by a test: launched with its own environment and
log file, waited for until ``/readyz`` answers, stopped with SIGTERM (graceful shutdown)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0


def launch(module: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m module`` with ``env``, stdout and stderr appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def logs(log_path: Path) -> str:
    return log_path.read_text(errors="replace") if log_path.exists() else ""


def wait_ready(
    process: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    *,
    name: str,
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    """Return once ``url/readyz`` answers 200; fail with the log's tail if the process exits or
    never gets ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{name} exited:\n{logs(log_path)[-3000:]}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{name} never became ready:\n{logs(log_path)[-3000:]}")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

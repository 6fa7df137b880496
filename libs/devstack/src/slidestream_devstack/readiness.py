"""Waiting for servers: poll a check until it passes, the process dies, or time runs out."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from slidestream_devstack.errors import StackError

POLL_INTERVAL_S = 0.25
PROBE_TIMEOUT_S = 2.0
LOG_TAIL_LINES = 30


def tcp_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_ok(url: str, *, method: str = "GET", timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    try:
        response = httpx.request(method, url, timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.is_success


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        # Logs may be large; the last 64 KiB hold far more than the lines we show.
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout_s: float,
    alive: Callable[[], bool] | None = None,
    log_path: Path | None = None,
) -> float:
    """Poll ``check`` and return the seconds it took; fail fast once ``alive`` turns false."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        if check():
            return time.monotonic() - started
        if alive is not None and not alive():
            raise StackError(f"{what}: the process exited before it was ready{_log_hint(log_path)}")
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not ready after {timeout_s:.0f} s{_log_hint(log_path)}")
        time.sleep(POLL_INTERVAL_S)


def _log_hint(log_path: Path | None) -> str:
    if log_path is None:
        return ""
    return f"\n--- last lines of {log_path} ---\n{tail(log_path)}"

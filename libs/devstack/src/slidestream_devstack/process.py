"""Background server processes, tracked by pid records under ``.local/run/``.

A record stores the pid together with the process's creation time: a pid alone may be reused by an
unrelated process after a reboot, the pair may not.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import psutil

STOP_TIMEOUT_S = 20.0
_CREATE_TIME_TOLERANCE_S = 0.05


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    part: str
    pid: int
    create_time: float
    argv: list[str]
    started_at: float
    """Epoch seconds when we launched it."""
    startup_s: float | None = None
    """Seconds from launch to ready (and provisioned); None while it is still starting."""

    def with_startup(self, startup_s: float) -> ProcessRecord:
        return replace(self, startup_s=startup_s)


def write_record(path: Path, record: ProcessRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


def read_record(path: Path) -> ProcessRecord | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ProcessRecord(**data)
    except (ValueError, TypeError):
        # A record from an older layout or a torn write: treat the part as not started by us.
        return None


def is_alive(record: ProcessRecord) -> bool:
    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) > _CREATE_TIME_TOLERANCE_S:
            return False
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment for a server process: ours plus the part's own variables."""
    # A child process inherits PATH, HOME, locale and proxies from the developer's shell; this is
    # the one place the stack copies the environment, and only to hand it to a child.
    env = os.environ.copy()  # noqa: TID251
    env.update(extra)
    return env


def spawn(
    argv: Sequence[str],
    *,
    part: str,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    user: str | None = None,
) -> ProcessRecord:
    """Start a server detached from our terminal and session, its output appended to ``log_path``.

    A new session keeps Ctrl-C in the developer's shell from reaching the servers and lets ``stop``
    signal the whole process group (Triton's Python-backend stubs, Postgres's workers).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(
            f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode()
        )
        log.flush()
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
        )
    create_time = psutil.Process(process.pid).create_time()
    return ProcessRecord(
        part=part,
        pid=process.pid,
        create_time=create_time,
        argv=list(argv),
        started_at=time.time(),
    )


def stop(
    record: ProcessRecord,
    *,
    stop_signal: signal.Signals = signal.SIGTERM,
    timeout_s: float = STOP_TIMEOUT_S,
) -> None:
    """Ask the server to shut down; after ``timeout_s`` kill its whole process group."""
    if not is_alive(record):
        return
    process = psutil.Process(record.pid)
    try:
        process.send_signal(stop_signal)
        process.wait(timeout=timeout_s)
    except psutil.TimeoutExpired:
        _kill_group(record.pid)
        process.wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)

"""The fault suite's own processes: started detached with a log each, killed (SIGKILL, as the
kernel's OOM killer or a node failure does), restarted, stopped — only ever by the pid the suite
recorded when it started them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from slidestream_devstack.process import (
    ProcessRecord,
    child_env,
    is_alive,
    read_record,
    spawn,
    stop,
    write_record,
)
from slidestream_devstack.readiness import tail

KILL_WAIT_S = 10.0


@dataclass
class Managed:
    """One process of the suite: how to start it, and the record of the running one."""

    name: str
    argv: list[str]
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    """Added to the inherited environment."""
    user: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    record: ProcessRecord | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "pids" / f"{self.name}.json"

    @property
    def alive(self) -> bool:
        return self.record is not None and is_alive(self.record)

    def start(self) -> None:
        if self.alive:
            return
        self.record = spawn(
            self.argv,
            part=self.name,
            env=child_env(self.env),
            cwd=self.run_dir,
            log_path=self.log_path,
            user=self.user,
        )
        write_record(self.pid_file, self.record)
        self.starts += 1

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> float:
        """``sig`` (SIGKILL unless told: PostgreSQL's immediate shutdown is SIGQUIT), waited
        for; the epoch second it was sent."""
        killed_at = time.time()
        if self.record is not None and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.record.pid, sig)
            with contextlib.suppress(psutil.Error):
                psutil.Process(self.record.pid).wait(timeout=KILL_WAIT_S)
        return killed_at

    def stop(self) -> None:
        if self.record is not None:
            stop(self.record, stop_signal=self.stop_signal)
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def log_offset(self) -> int:
        """The log's size now: what :meth:`log_since` reads from."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        """What the process logged after ``offset`` (its restarts included)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")


def stop_leftovers(run_dir: Path) -> None:
    """Stop the processes an interrupted earlier run of the suite left (by their pid records:
    a pid reused by another process does not match its record's creation time)."""
    for pid_file in sorted((run_dir / "pids").glob("*.json")):
        record = read_record(pid_file)
        if record is not None and is_alive(record):
            stop(record)
        pid_file.unlink(missing_ok=True)

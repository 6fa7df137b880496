"""Background processes: spawned detached with a log, stopped politely or, failing that, killed."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from slidestream_devstack.process import child_env, is_alive, spawn, stop
from slidestream_devstack.readiness import wait_until

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ignoring SIGTERM', flush=True)\n"
    "time.sleep(60)\n"
)


def test_spawned_process_logs_and_stops_on_sigterm(tmp_path: Path) -> None:
    log_path = tmp_path / "sleeper.log"
    record = spawn(
        [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)"],
        part="sleeper",
        env=child_env({}),
        cwd=tmp_path,
        log_path=log_path,
    )
    assert is_alive(record)
    wait_until(lambda: "hello" in log_path.read_text(), what="sleeper", timeout_s=10)
    stop(record, stop_signal=signal.SIGTERM, timeout_s=5)
    assert not is_alive(record)


def test_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    log_path = tmp_path / "stubborn.log"
    record = spawn(
        [sys.executable, "-c", IGNORES_SIGTERM],
        part="stubborn",
        env=child_env({}),
        cwd=tmp_path,
        log_path=log_path,
    )
    wait_until(lambda: "ignoring SIGTERM" in log_path.read_text(), what="stubborn", timeout_s=10)
    stop(record, stop_signal=signal.SIGTERM, timeout_s=0.5)
    assert not is_alive(record)


def test_child_env_adds_to_the_inherited_environment() -> None:
    env = child_env({"SLIDESTREAM_TEST_ONLY": "1"})
    assert env["SLIDESTREAM_TEST_ONLY"] == "1"
    assert "PATH" in env

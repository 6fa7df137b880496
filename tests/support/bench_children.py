"""How benchmarks start their timed child processes."""

from __future__ import annotations

import os
from pathlib import Path


def child_environment(cache: Path) -> dict[str, str]:
    """Every contender's environment: compiled bytecode cached under ``cache``, as in the
    service image (Dockerfile: UV_COMPILE_BYTECODE=1). This shell sets PYTHONDONTWRITEBYTECODE,
    which would make each child recompile its imports (~2 s for wsidicom's, ~0.1 s for the
    modules QC imports on its first call) on every run."""
    env = os.environ.copy()  # noqa: TID251 - building a child process environment
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def own_peak_rss_bytes() -> int:
    """This process's own high-water mark of resident memory (VmHWM, proc(5)).

    Not getrusage's ru_maxrss: the kernel carries the largest RSS a process had before exec()
    into it, so a child started by a benchmark that has just generated a large slide would
    report the benchmark's size, not its own."""
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")

"""A process's own peak memory, for tests and benchmarks that bound it in a child process."""

from __future__ import annotations

from pathlib import Path


def own_peak_rss_bytes() -> int:
    """This process's own high-water mark of resident memory (VmHWM, proc(5)).

    Not getrusage's ru_maxrss: the kernel carries the largest RSS a process had before exec()
    into it, so a child started by a large test or benchmark process would report its parent's
    size, not its own."""
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")

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

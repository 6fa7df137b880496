"""Building and fetching the stack's artefacts, once per pinned version.

Each artefact has a stamp file holding the pins it was built from; a build runs only when the stamp
is missing or differs, so a warm ``up`` costs nothing here. Build output goes to a log under
``.local/logs/`` and the developer sees a spinner with the elapsed time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console

from slidestream_devstack.errors import StackError
from slidestream_devstack.process import child_env
from slidestream_devstack.readiness import tail

BUILD_TIMEOUT_S = 3600.0


def stamp_matches(stamp: Path, expected: str) -> bool:
    return stamp.exists() and stamp.read_text(encoding="utf-8").strip() == expected.strip()


def write_stamp(stamp: Path, content: str) -> None:
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(content.strip() + "\n", encoding="utf-8")


def require_tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise StackError(f"`{name}` is not on PATH; {hint}")
    return found


def run_build(
    argv: Sequence[str],
    *,
    description: str,
    console: Console,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> float:
    """Run one build command with a live status line; return its duration in seconds."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (
        log_path.open("ab") as log,
        console.status(f"{description} (log: {log_path})", spinner="dots") as status,
    ):
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=child_env(env or {}),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        while True:
            try:
                return_code = process.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                elapsed_s = time.monotonic() - started
                if elapsed_s > BUILD_TIMEOUT_S:
                    process.kill()
                    process.wait()
                    raise StackError(f"{description}: gave up after {elapsed_s:.0f} s") from None
                status.update(f"{description} … {elapsed_s:.0f} s (log: {log_path})")
    duration_s = time.monotonic() - started
    if return_code != 0:
        raise StackError(
            f"{description} failed (exit {return_code}); "
            f"last lines of {log_path}:\n{tail(log_path)}"
        )
    console.print(f"[green]✓[/] {description} ({duration_s:.0f} s)")
    return duration_s


def go_install(
    *,
    module: str,
    version: str,
    binary: Path,
    console: Console,
    log_path: Path,
) -> None:
    """``go install module@version`` into ``binary``'s directory, unless that version is there."""
    stamp = binary.with_name(f".{binary.name}.stamp")
    wanted = f"{module}@{version}"
    if binary.exists() and stamp_matches(stamp, wanted):
        return
    go = require_tool("go", "install the Go toolchain (https://go.dev/dl/) to build it")
    if binary.exists() and _go_binary_module_version(go, binary) == (module, version):
        # Built by hand or by an earlier layout without a stamp: adopt it instead of rebuilding.
        write_stamp(stamp, wanted)
        return
    # `go install` names the binary after the package (toxiproxy's is `server`): build into a
    # folder of its own and move it, so that a generic name never lands in (or clobbers) bin/.
    staging = binary.with_name(f".{binary.name}.build")
    shutil.rmtree(staging, ignore_errors=True)
    run_build(
        [go, "install", wanted],
        description=f"Building {binary.name} {version} with Go",
        console=console,
        log_path=log_path,
        # -trimpath keeps local paths out of the binary: builds are reproducible across checkouts.
        env={"GOBIN": str(staging), "GOFLAGS": "-trimpath", "CGO_ENABLED": "0"},
    )
    (staging / go_command_name(module)).replace(binary)
    shutil.rmtree(staging, ignore_errors=True)
    write_stamp(stamp, wanted)


def go_command_name(package: str) -> str:
    """The file name `go install` gives a main package: its last path element, or the one before
    a major-version suffix (``example.com/tool/v2`` builds ``tool``)."""
    elements = package.rstrip("/").split("/")
    last = elements[-1]
    if len(elements) > 1 and re.fullmatch(r"v[0-9]+", last):
        return elements[-2]
    return last


def _go_binary_module_version(go: str, binary: Path) -> tuple[str, str] | None:
    """The (main package path, module version) recorded in a Go binary's build info."""
    completed = subprocess.run(
        [go, "version", "-m", str(binary)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return None
    package = version = None
    for line in completed.stdout.splitlines():
        columns = line.split()
        if len(columns) >= 2 and columns[0] == "path":
            package = columns[1]
        if len(columns) >= 3 and columns[0] == "mod":
            version = columns[2]
    if package is None or version is None:
        return None
    return package, version

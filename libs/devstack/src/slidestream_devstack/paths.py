"""Where the stack keeps its state: everything lives under ``<repo>/.local/``."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from slidestream_devstack.errors import StackError

LOCAL_DIR_NAME = ".local"


def _git_toplevel(start: Path) -> Path | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=start,
            capture_output=True,
            text=True,
            check=False,
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    if completed.returncode != 0:
        return None
    return Path(completed.stdout.strip())


def find_repo_root(override: Path | None = None) -> Path:
    """The override if given, else the git checkout holding this package, else the one around cwd.

    The package's own checkout wins over cwd so that running the CLI from another directory still
    manages the same stack as the tests do.
    """
    if override is not None:
        return override.expanduser().resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd()):
        root = _git_toplevel(start)
        if root is not None:
            return root
    raise StackError(
        "cannot find the repository root: run inside the checkout or set SLIDESTREAM_HOME"
    )


@dataclass(frozen=True, slots=True)
class StackPaths:
    root: Path

    @property
    def local(self) -> Path:
        return self.root / LOCAL_DIR_NAME

    @property
    def bin(self) -> Path:
        return self.local / "bin"

    @property
    def logs(self) -> Path:
        return self.local / "logs"

    @property
    def run(self) -> Path:
        """Pid records and the stack lock."""
        return self.local / "run"

    @property
    def env_file(self) -> Path:
        return self.local / "stack.env"

    @property
    def credentials_file(self) -> Path:
        return self.local / "credentials.json"

    @property
    def sqlite_file(self) -> Path:
        """Embedded database when PostgreSQL is absent; ``{service}`` keeps a file per service."""
        return self.local / "data" / "{service}.db"

    @property
    def data(self) -> Path:
        return self.local / "data"

    def part_dir(self, part: str) -> Path:
        return self.local / part

    def log_file(self, part: str) -> Path:
        return self.logs / f"{part}.log"

    def pid_file(self, part: str) -> Path:
        return self.run / f"{part}.json"

    def ensure(self) -> None:
        for directory in (self.local, self.bin, self.logs, self.run, self.data):
            directory.mkdir(parents=True, exist_ok=True)

"""What every part of the stack (one server each) tells the orchestrator."""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rich.console import Console

from slidestream_devstack.credentials import Credentials
from slidestream_devstack.paths import StackPaths
from slidestream_devstack.settings import DevstackSettings

DEFAULT_READY_TIMEOUT_S = 60.0

SERVER_PHASE = 0
"""Servers that need nothing else of the stack: started in parallel, first."""
DEPENDENT_SERVER_PHASE = 1
"""Servers that need what a server of phase 0 provisioned (Triton: MinIO's ``models`` bucket)."""
SERVICE_PHASE = 2
"""slidestream's own services: they connect to every server when they start."""


@dataclass(frozen=True, slots=True)
class StackContext:
    paths: StackPaths
    settings: DevstackSettings
    credentials: Credentials
    console: Console
    peer_env: dict[str, str] = field(default_factory=dict)
    """stack.env entries of the parts already running (what a service connects to)."""


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    """Variables added to the inherited environment."""
    user: str | None = None
    """Run as this OS user (only applied when we are root; servers like Postgres refuse root)."""


class Part(ABC):
    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    """Parts this one talks to at runtime; selecting it starts them too."""
    ports: ClassVar[tuple[int, ...]] = ()
    """Loopback ports it binds; checked free before launch: never adopt a stranger's server."""
    ready_timeout_s: ClassVar[float] = DEFAULT_READY_TIMEOUT_S
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    phase: ClassVar[int] = SERVER_PHASE
    """Start order between groups: every part of a phase is ready and provisioned before the
    next phase launches."""

    def unavailable_reason(self, ctx: StackContext) -> str | None:
        """Why this part cannot run on this machine (then it is skipped), or None."""
        return None

    def build(self, ctx: StackContext) -> None:  # noqa: B027 (optional step, no-op by default)
        """Fetch or build the artefacts for the pinned version (skipped when already there)."""

    def prepare(self, ctx: StackContext) -> None:  # noqa: B027 (optional step, no-op by default)
        """Initialise data directories and config files before a launch; must be idempotent."""

    @abstractmethod
    def launch_spec(self, ctx: StackContext) -> LaunchSpec: ...

    @abstractmethod
    def is_ready(self, ctx: StackContext) -> bool:
        """A cheap probe that the server answers requests."""

    def provision(self, ctx: StackContext) -> None:  # noqa: B027 (optional step, no-op by default)
        """Create what the platform expects inside the server (topics, buckets, databases)."""

    @abstractmethod
    def endpoint(self, ctx: StackContext) -> str: ...

    @abstractmethod
    def env(self, ctx: StackContext) -> dict[str, str]:
        """The stack.env entries this part contributes while it runs."""


def unprivileged_user(preferred: str) -> str | None:
    """The user to run a server that refuses root as: ``preferred`` when we are root, else us."""
    return preferred if os.geteuid() == 0 else None

"""The local stack as a whole: start, stop and inspect its parts, and publish ``stack.env``.

This is the Python API the CLI and the integration tests share::

    env = up(["kafka", "minio"])   # idempotent; returns the stack.env mapping
    down()                          # stop everything we started
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Final, Literal

from rich.console import Console

from slidestream_devstack.credentials import load_or_create_credentials
from slidestream_devstack.envfile import read_env_file, write_env_file
from slidestream_devstack.errors import StackError
from slidestream_devstack.kafka import KafkaPart
from slidestream_devstack.milvus import MilvusPart
from slidestream_devstack.minio import MinioPart
from slidestream_devstack.part import Part, StackContext
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.ports import LOOPBACK
from slidestream_devstack.postgres import PostgresPart, sqlite_url
from slidestream_devstack.process import (
    ProcessRecord,
    child_env,
    is_alive,
    read_record,
    spawn,
    stop,
    write_record,
)
from slidestream_devstack.readiness import tcp_open, wait_until
from slidestream_devstack.seaweedfs import SeaweedfsPart
from slidestream_devstack.services import (
    CatalogServicePart,
    ConvertServicePart,
    DeidServicePart,
    InferenceServicePart,
    QcServicePart,
    UploadServicePart,
)
from slidestream_devstack.settings import DevstackSettings
from slidestream_devstack.triton import TritonPart
from slidestream_devstack.tusd import TusdPart

ALL_PARTS: Final[tuple[Part, ...]] = (
    PostgresPart(),
    MinioPart(),
    SeaweedfsPart(),
    KafkaPart(),
    TritonPart(),
    TusdPart(),
    MilvusPart(),
    UploadServicePart(),
    CatalogServicePart(),
    DeidServicePart(),
    ConvertServicePart(),
    QcServicePart(),
    InferenceServicePart(),
)
"""Start order within a phase; each phase (servers, servers that need another server's
provisioning, services) is ready before the next one starts (``Part.phase``)."""
PARTS_BY_NAME: Final[dict[str, Part]] = {part.name: part for part in ALL_PARTS}
PART_NAMES: Final[tuple[str, ...]] = tuple(PARTS_BY_NAME)

PartState = Literal["healthy", "unhealthy", "down", "unavailable"]


@dataclass(frozen=True, slots=True)
class PartStatus:
    name: str
    state: PartState
    pid: int | None
    endpoint: str
    startup_s: float | None
    note: str = ""


def make_context(
    settings: DevstackSettings | None = None, console: Console | None = None
) -> StackContext:
    settings = settings if settings is not None else DevstackSettings()
    paths = StackPaths(find_repo_root(settings.home))
    paths.ensure()
    return StackContext(
        paths=paths,
        settings=settings,
        credentials=load_or_create_credentials(paths.credentials_file),
        # Progress goes to stderr so that stdout stays clean for scripts.
        console=console if console is not None else Console(stderr=True),
    )


def select_parts(names: Sequence[str] | None, *, with_requirements: bool) -> list[Part]:
    """The named parts (all when None), plus what they require, in start order."""
    if not names:
        return list(ALL_PARTS)
    unknown = sorted(set(names) - PARTS_BY_NAME.keys())
    if unknown:
        raise StackError(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PART_NAMES)}")
    wanted = set(names)
    if with_requirements:
        pending = list(wanted)
        while pending:
            for requirement in PARTS_BY_NAME[pending.pop()].requires:
                if requirement not in wanted:
                    wanted.add(requirement)
                    pending.append(requirement)
    return [part for part in ALL_PARTS if part.name in wanted]


@contextmanager
def _stack_lock(ctx: StackContext) -> Iterator[None]:
    """One up/down at a time per checkout: parallel test sessions share one stack."""
    with (ctx.paths.run / "stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _running_record(ctx: StackContext, part: Part) -> ProcessRecord | None:
    record = read_record(ctx.paths.pid_file(part.name))
    return record if record is not None and is_alive(record) else None


def _launch(ctx: StackContext, part: Part) -> ProcessRecord:
    busy = [port for port in part.ports if tcp_open(LOOPBACK, port)]
    if busy:
        raise StackError(
            f"{part.name}: port(s) {', '.join(map(str, busy))} on {LOOPBACK} are taken by a "
            "process this stack did not start; stop it or change slidestream_devstack/ports.py"
        )
    part.prepare(ctx)
    spec = part.launch_spec(ctx)
    record = spawn(
        spec.argv,
        part=part.name,
        env=child_env(spec.env),
        cwd=spec.cwd,
        log_path=ctx.paths.log_file(part.name),
        user=spec.user,
    )
    write_record(ctx.paths.pid_file(part.name), record)
    return record


def _await_ready(ctx: StackContext, part: Part, record: ProcessRecord) -> None:
    try:
        wait_until(
            lambda: part.is_ready(ctx),
            what=f"{part.name} (pid {record.pid})",
            timeout_s=part.ready_timeout_s,
            alive=lambda: is_alive(record),
            log_path=ctx.paths.log_file(part.name),
        )
    except StackError:
        # A half-started server would hold its ports and be adopted by the next `up`.
        stop(record, stop_signal=part.stop_signal)
        ctx.paths.pid_file(part.name).unlink(missing_ok=True)
        raise


def _finish_start(ctx: StackContext, part: Part, *, launched: bool) -> None:
    record = _running_record(ctx, part)
    if record is None:
        raise StackError(f"{part.name} exited right after it was started")
    _await_ready(ctx, part, record)
    part.provision(ctx)
    if launched:
        startup_s = time.time() - record.started_at
        write_record(ctx.paths.pid_file(part.name), record.with_startup(startup_s))
        ctx.console.print(
            f"[green]✓[/] {part.name} ready in {startup_s:.1f} s "
            f"(pid {record.pid}, {part.endpoint(ctx)})"
        )
    else:
        ctx.console.print(f"[green]•[/] {part.name} already running (pid {record.pid})")


def _stop_part(ctx: StackContext, part: Part) -> None:
    pid_file = ctx.paths.pid_file(part.name)
    record = read_record(pid_file)
    if record is not None and is_alive(record):
        started = time.monotonic()
        stop(record, stop_signal=part.stop_signal)
        ctx.console.print(
            f"[green]✓[/] {part.name} stopped (pid {record.pid}, "
            f"{time.monotonic() - started:.1f} s)"
        )
    pid_file.unlink(missing_ok=True)


def up(
    parts: Sequence[str] | None = None,
    *,
    settings: DevstackSettings | None = None,
    console: Console | None = None,
) -> dict[str, str]:
    """Build what is missing, start what is not running, wait until ready; return stack.env."""
    ctx = make_context(settings, console)
    with _stack_lock(ctx):
        try:
            _start(ctx, select_parts(parts, with_requirements=True))
        finally:
            # Also after a failure: the parts that did start are usable and must be findable.
            env = _publish_env(ctx)
    return env


def _start(ctx: StackContext, selected: list[Part]) -> None:
    for phase in sorted({part.phase for part in selected}):
        # Services connect to the servers when they start, so they get the servers' endpoints.
        phase_ctx = replace(ctx, peer_env=_running_env(ctx))
        _start_phase(phase_ctx, [part for part in selected if part.phase == phase])


def _start_phase(ctx: StackContext, selected: list[Part]) -> None:
    runnable: list[Part] = []
    for part in selected:
        reason = part.unavailable_reason(ctx)
        if reason is not None:
            ctx.console.print(f"[yellow]•[/] {part.name}: skipped ({reason})")
            continue
        part.build(ctx)
        runnable.append(part)

    # Launch everything first and wait afterwards: servers start in parallel.
    launched: set[str] = set()
    for part in runnable:
        if _running_record(ctx, part) is None:
            _launch(ctx, part)
            launched.add(part.name)

    # Wait for all of them at once, so each part's recorded startup time is its own.
    with ThreadPoolExecutor(max_workers=max(1, len(runnable))) as pool:
        futures = [
            pool.submit(_finish_start, ctx, part, launched=part.name in launched)
            for part in runnable
        ]
        errors = [error for future in futures if (error := future.exception()) is not None]
    if errors:
        raise errors[0]


def down(
    parts: Sequence[str] | None = None,
    *,
    settings: DevstackSettings | None = None,
    console: Console | None = None,
) -> None:
    """Stop the named parts (all when None) that this stack started."""
    ctx = make_context(settings, console)
    with _stack_lock(ctx):
        selected = list(reversed(select_parts(parts, with_requirements=False)))
        # Servers shut down independently; together, the slowest one bounds the wait.
        with ThreadPoolExecutor(max_workers=max(1, len(selected))) as pool:
            for future in [pool.submit(_stop_part, ctx, part) for part in selected]:
                future.result()
        _publish_env(ctx)


def status(*, settings: DevstackSettings | None = None) -> list[PartStatus]:
    ctx = make_context(settings, Console(stderr=True))
    statuses: list[PartStatus] = []
    for part in ALL_PARTS:
        reason = part.unavailable_reason(ctx)
        record = _running_record(ctx, part)
        if record is None:
            state: PartState = "unavailable" if reason is not None else "down"
            statuses.append(
                PartStatus(part.name, state, None, part.endpoint(ctx), None, reason or "")
            )
            continue
        state = "healthy" if part.is_ready(ctx) else "unhealthy"
        statuses.append(
            PartStatus(part.name, state, record.pid, part.endpoint(ctx), record.startup_s)
        )
    return statuses


def _running_env(ctx: StackContext) -> dict[str, str]:
    """The entries of every part that runs now, plus the SQLite fallback."""
    env: dict[str, str] = {}
    for part in ALL_PARTS:
        if _running_record(ctx, part) is not None:
            env.update(part.env(ctx))
    env.setdefault("DATABASE_URL", sqlite_url(ctx.paths.sqlite_file))
    return env


def _publish_env(ctx: StackContext) -> dict[str, str]:
    """stack.env holds the entries of every part that runs now, plus the SQLite fallback."""
    env = _running_env(ctx)
    write_env_file(ctx.paths.env_file, env)
    return env


def read_stack_env(*, settings: DevstackSettings | None = None) -> dict[str, str]:
    """The mapping the last ``up``/``down`` wrote (empty when the stack never ran)."""
    settings = settings if settings is not None else DevstackSettings()
    return read_env_file(StackPaths(find_repo_root(settings.home)).env_file)

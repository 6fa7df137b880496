"""``slidestream stack up|down|status|logs``: the local stack from the command line."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from slidestream_devstack import stack
from slidestream_devstack.errors import StackError
from slidestream_devstack.paths import StackPaths, find_repo_root
from slidestream_devstack.readiness import tail
from slidestream_devstack.settings import DevstackSettings

FOLLOW_POLL_S = 0.5
DEFAULT_LOG_LINES = 50

app = typer.Typer(
    name="stack",
    help="Run the real local stack (Kafka, MinIO, SeaweedFS, Postgres, Triton, tusd) in .local/",
    no_args_is_help=True,
)
_stdout = Console()
_stderr = Console(stderr=True)

PartsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help=f"Parts to act on (default: all): {', '.join(stack.PART_NAMES)}.",
        show_default=False,
    ),
]


def _fail(error: StackError) -> typer.Exit:
    _stderr.print(f"[red]error:[/] {error}")
    return typer.Exit(code=1)


@app.command()
def up(
    parts: PartsArgument = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            min=1,
            help="Partitions per pipeline topic (default: KAFKA_TOPIC_PARTITIONS or 12).",
        ),
    ] = None,
) -> None:
    """Build what is missing, start what is not running, write .local/stack.env."""
    settings = DevstackSettings()
    if partitions is not None:
        settings = settings.model_copy(update={"kafka_topic_partitions": partitions})
    started = time.monotonic()
    try:
        env = stack.up(parts, settings=settings, console=_stderr)
    except StackError as error:
        raise _fail(error) from error
    env_file = StackPaths(find_repo_root(settings.home)).env_file
    _stderr.print(
        f"[green]stack up[/] in {time.monotonic() - started:.1f} s; "
        f"{len(env)} variables in {env_file}"
    )


@app.command()
def down(parts: PartsArgument = None) -> None:
    """Stop the parts this stack started (SIGTERM, then SIGKILL)."""
    try:
        stack.down(parts, console=_stderr)
    except StackError as error:
        raise _fail(error) from error


@app.command()
def status() -> None:
    """Show every part: state, pid, endpoint and how long it took to start."""
    table = Table(title="slidestream local stack")
    for column in ("part", "state", "pid", "endpoint", "startup"):
        table.add_column(column)
    colours = {"healthy": "green", "unhealthy": "yellow", "down": "red", "unavailable": "dim"}
    for part in stack.status():
        state = f"[{colours[part.state]}]{part.state}[/]"
        if part.note:
            state += f" [dim]({part.note})[/]"
        table.add_row(
            part.name,
            state,
            str(part.pid) if part.pid is not None else "-",
            part.endpoint,
            f"{part.startup_s:.1f} s" if part.startup_s is not None else "-",
        )
    _stdout.print(table)


@app.command()
def logs(
    part: Annotated[str, typer.Argument(help=f"One of {', '.join(stack.PART_NAMES)}.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show.")] = DEFAULT_LOG_LINES,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Print the end of a part's log."""
    if part not in stack.PARTS_BY_NAME:
        raise _fail(StackError(f"unknown part {part!r}; known: {', '.join(stack.PART_NAMES)}"))
    log_path = StackPaths(find_repo_root(DevstackSettings().home)).log_file(part)
    if not log_path.exists():
        raise _fail(StackError(f"no log yet at {log_path}"))
    print(tail(log_path, lines))
    if not follow:
        return
    with log_path.open("r", encoding="utf-8", errors="replace") as handle:
        handle.seek(0, 2)
        try:
            while True:
                chunk = handle.read()
                if chunk:
                    print(chunk, end="", flush=True)
                else:
                    time.sleep(FOLLOW_POLL_S)
        except KeyboardInterrupt:
            return


@app.command()
def demo() -> None:
    """Sample slides through every stage that runs: upload, follow, one table per slide."""
    from slidestream_devstack.demo import run_demo

    settings = DevstackSettings()
    try:
        env = stack.up(settings=settings, console=_stderr)
    except StackError as error:
        raise _fail(error) from error
    running = [part.name for part in stack.status(settings=settings) if part.state == "healthy"]
    surprises = run_demo(env, running, StackPaths(find_repo_root(settings.home)))
    raise typer.Exit(code=1 if surprises else 0)


if __name__ == "__main__":
    app()

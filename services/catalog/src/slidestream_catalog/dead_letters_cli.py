"""``slidestream dlq list|show|replay|purge``: the operators' view of the dead-letter topics
(Kafka, from ``KAFKA_BOOTSTRAP`` or ``.local/stack.env``). The rules are in
:mod:`slidestream_catalog.dead_letters`; every verb takes ``--json`` for scripts.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from slidestream_contracts.topics import SERVICES

if TYPE_CHECKING:
    from slidestream_catalog.dead_letters import DeadLetter

LOCAL_STACK_ENV = Path(".local/stack.env")
MESSAGE_COLUMN_CHARS = 70

app = typer.Typer(name="dlq", help="Dead letters: what failed and why; replay or purge them.")
_out = Console()
_err = Console(stderr=True)

ServiceOption = Annotated[
    str | None, typer.Option("--service", help=f"Only this service's ({', '.join(SERVICES)}).")
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Only this reason code.")]
SlideOption = Annotated[str | None, typer.Option("--slide", help="Only this slide's.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
EnvFile = Annotated[
    Path | None,
    typer.Option(help="Read settings from this env file (default: .local/stack.env if present)."),
]


@app.callback()
def dlq() -> None:
    """Dead letters: what failed and why; replay or purge them."""


def _bootstrap(env_file: Path | None) -> str:
    from slidestream_catalog.settings import CatalogSettings

    chosen = env_file or (LOCAL_STACK_ENV if LOCAL_STACK_ENV.exists() else None)
    return CatalogSettings(_env_file=chosen).kafka_bootstrap


def _services(service: str | None) -> tuple[str, ...]:
    if service is None:
        return SERVICES
    if service not in SERVICES:
        _err.print(f"[red]error:[/] unknown service {service!r}; known: {', '.join(SERVICES)}")
        raise typer.Exit(2)
    return (service,)


def _letters(
    env_file: Path | None,
    service: str | None,
    reason: str | None,
    slide: str | None,
    ids: list[str] | None = None,
) -> tuple[str, list[DeadLetter]]:
    from slidestream_catalog.dead_letters import (
        DeadLetterError,
        parse_id,
        read_dead_letters,
        select,
    )

    bootstrap = _bootstrap(env_file)
    try:
        services = _services(service)
        if ids:
            services = tuple(sorted({parse_id(letter_id)[0] for letter_id in ids}))
        letters = asyncio.run(read_dead_letters(bootstrap, services))
        return bootstrap, select(letters, reason=reason, slide_id=slide, ids=ids or ())
    except DeadLetterError as error:
        _err.print(f"[red]error:[/] {error}")
        raise typer.Exit(1) from error


@app.command("list")
def list_command(
    service: ServiceOption = None,
    reason: ReasonOption = None,
    slide: SlideOption = None,
    as_json: JsonOption = False,
    env_file: EnvFile = None,
) -> None:
    """Every dead letter: what failed, why, since when; then the count per service and reason."""
    from slidestream_catalog.dead_letters import by_reason

    _, letters = _letters(env_file, service, reason, slide)
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(letter.summary()))
        return
    table = Table("id", "slide", "reason", "message", "failed at", "attempts")
    for letter in letters:
        row = letter.summary()
        message = str(row["message"])
        table.add_row(
            row["id"],
            row["slide_id"] or "-",
            row["reason"],
            message[:MESSAGE_COLUMN_CHARS] + ("…" if len(message) > MESSAGE_COLUMN_CHARS else ""),
            (row["failed_at"] or "-")[:19],
            str(row["attempts"] or "-"),
        )
    _out.print(table)
    for group in by_reason(letters):
        since = group.since.isoformat()[:19] if group.since else "?"
        latest = group.latest.isoformat()[:19] if group.latest else "?"
        _out.print(f"{group.service}: {group.count} × {group.reason} since {since} (last {latest})")
    if not letters:
        _out.print("no dead letters")


@app.command("show")
def show_command(
    letter_id: Annotated[str, typer.Argument(help="<service>/<partition>/<offset>")],
    env_file: EnvFile = None,
) -> None:
    """One dead letter in full, its original message decoded where it is JSON."""
    _, [letter] = _letters(env_file, None, None, None, [letter_id])
    shown: dict[str, Any] = {"id": letter.id, "problem": letter.problem or None}
    if letter.record is not None:
        shown["record"] = letter.record.model_dump(mode="json", exclude={"payload_base64"})
        payload = base64.b64decode(letter.record.payload_base64)
        try:
            shown["original"] = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            shown["original_base64"] = letter.record.payload_base64
    typer.echo(json.dumps(shown, indent=2))


@app.command("replay")
def replay_command(
    letter_ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids.")] = None,
    service: ServiceOption = None,
    reason: ReasonOption = None,
    slide: SlideOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send even where a replay was already sent.")
    ] = False,
    as_json: JsonOption = False,
    env_file: EnvFile = None,
) -> None:
    """Send the originals back to their topics once the cause is fixed (each one once)."""
    from slidestream_catalog.dead_letters import DeadLetterError, replay

    if not (letter_ids or service or reason or slide):
        _err.print("[red]error:[/] name dead letters, or filter with --service/--reason/--slide")
        raise typer.Exit(2)
    bootstrap, letters = _letters(env_file, service, reason, slide, letter_ids)
    try:
        outcomes = asyncio.run(replay(bootstrap, letters, force=force))
    except DeadLetterError as error:
        _err.print(f"[red]error:[/] {error}")
        raise typer.Exit(1) from error
    for outcome in outcomes:
        verdict = "replayed" if outcome.sent else "already-replayed"
        if as_json:
            typer.echo(
                json.dumps({"id": outcome.letter.id, "outcome": verdict, "at": outcome.where})
            )
        else:
            _out.print(f"{outcome.letter.id}: {verdict} ({outcome.where})")


@app.command("purge")
def purge_command(
    service: Annotated[str, typer.Option("--service", help="The service's dead-letter topic.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it (every dead letter goes).")] = False,
    as_json: JsonOption = False,
    env_file: EnvFile = None,
) -> None:
    """Delete every dead letter of one service (Kafka truncates a topic; it deletes no single
    record). Replay what must be kept first."""
    from slidestream_catalog.dead_letters import purge

    _services(service)
    if not yes:
        _err.print("[red]error:[/] purge deletes every dead letter of the service: add --yes")
        raise typer.Exit(2)
    deleted = asyncio.run(purge(_bootstrap(env_file), service))
    if as_json:
        typer.echo(json.dumps({"service": service, "deleted": deleted}))
    else:
        _out.print(f"dlq.{service}.v1: {deleted} dead letters deleted")

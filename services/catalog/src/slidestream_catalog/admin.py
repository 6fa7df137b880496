"""``slidestream admin reindex``: rebuild the catalog's search tables from the topics and swap
(operators; talks to the catalog database and Kafka). The steps are in
:mod:`slidestream_catalog.reindex`; ``--json`` prints the summary for scripts.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from slidestream_catalog.settings import CatalogSettings

if TYPE_CHECKING:
    from slidestream_catalog.reindex import ReindexSummary

LOCAL_STACK_ENV = Path(".local/stack.env")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

app = typer.Typer(name="admin", help="Operate slidestream: the catalog's search index.")
_err = Console(stderr=True)

EnvFile = Annotated[
    Path | None,
    typer.Option(help="Read settings from this env file (default: .local/stack.env if present)."),
]


@app.callback()
def admin() -> None:
    """Operate slidestream."""


class _Bar:
    """The reindex's progress as a rich bar on stderr (stdout stays for ``--json``)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("replaying events", total=None)

    def start(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def advance(self) -> None:
        self._progress.advance(self._task)


async def _reindex(settings: CatalogSettings, progress: Progress) -> ReindexSummary:
    # Imported here: the `slidestream` CLI loads this plug-in on every start, and the database
    # and Kafka stacks cost seconds that other commands should not pay.
    from slidestream_catalog.adapters.event_log import KafkaEventLog
    from slidestream_catalog.adapters.search_store import SqlSearchStore
    from slidestream_catalog.handlers import BY_TOPIC
    from slidestream_catalog.main import similar_services
    from slidestream_catalog.reindex import reindex
    from slidestream_platform.db import make_engine, upgrade_to_head

    engine = make_engine(settings.database, settings.service_name)
    try:
        upgrade_to_head(engine, settings.service_name, MIGRATIONS_DIR)
        async with (
            httpx.AsyncClient() as client,
            KafkaEventLog(settings.kafka_bootstrap, map(str, BY_TOPIC)) as log,
        ):
            # The same similarity indexer the service hands every run to.
            _, indexer = similar_services(settings, engine, client)
            return await reindex(SqlSearchStore(engine), log, (indexer,), _Bar(progress))
    finally:
        engine.dispose()


@app.command("reindex")
def reindex_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    env_file: EnvFile = None,
) -> None:
    """Rebuild the search tables from the topics' earliest offsets, then swap them in."""
    chosen = env_file or (LOCAL_STACK_ENV if LOCAL_STACK_ENV.exists() else None)
    settings = CatalogSettings(_env_file=chosen)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=as_json) as progress:
        summary = asyncio.run(_reindex(settings, progress))
    if as_json:
        typer.echo(json.dumps(asdict(summary)))
        return
    typer.echo(
        f"generation {summary.generation} is live: {summary.events} events applied "
        f"({summary.caught_up} while replaying), {summary.undecodable} undecodable, "
        f"{summary.refused} refused, {summary.unindexed} runs without vectors, "
        f"in {summary.seconds:.1f} s"
    )

"""``slidestream models``: AI teams push, load, route and backfill models (the inference
service's models API, ``INFERENCE_API``).

Exit codes: 0 done; 1 refused (an invalid model, an existing version, a failed canary, a
backfill with failed slides); 2 bad arguments, or a backfill still running at ``--timeout``;
3 the server could not answer (token refused or lacking a scope, unreachable).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, NoReturn, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from slidestream_client.cli_options import JsonOption, TokenOption, require_token
from slidestream_client.errors import ModelRefusedError, VersionExistsError
from slidestream_client.model_client import ModelsClient
from slidestream_client.model_output import (
    describe_load,
    describe_route,
    models_table,
    print_problems,
    problems_json,
    routes_table,
    status_tables,
)
from slidestream_client.model_push import prepare_push
from slidestream_client.model_shapes import BackfillProgress, BackfillStarted
from slidestream_client.output import (
    PER_FILE_ERRORS,
    USAGE_ERROR,
    ExitCode,
    error_message,
    error_reason,
    json_line,
    write_stdout_line,
)
from slidestream_client.progress import BackfillBar
from slidestream_client.settings import ClientSettings
from slidestream_modelrepo import FieldProblem, ModelPackageError

models_app = typer.Typer(
    name="models",
    help="Deploy models: push, load, route them to slides, backfill (models API).",
    no_args_is_help=True,
)

DEFAULT_BACKFILL_TIMEOUT_S = 3600.0

InferenceApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        help="Models API base URL (env INFERENCE_API; default http://127.0.0.1:8095).",
        show_default=False,
    ),
]
NameArgument = Annotated[str, typer.Argument(help="The model's name.")]
VersionOption = Annotated[
    str | None, typer.Option("--version", help="A model version (default: the newest).")
]
TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant whose slides it runs on.")]


def _connect(api: str | None, token: str | None) -> ModelsClient:
    settings = ClientSettings.load()
    return ModelsClient(api or settings.inference_api, require_token(token, settings))


@contextmanager
def _reported(json_output: bool, **context: object) -> Iterator[None]:
    """Failures as ``field: message`` lines (or one JSON line) and the matching exit code."""
    try:
        yield
    except ModelPackageError as error:
        _fail(json_output, context, "invalid-model", "the model is invalid", error.problems)
    except ModelRefusedError as error:
        _fail(json_output, context, error.reason, error.message, error.problems)
    except VersionExistsError as error:
        message = f"{error.message}: versions are immutable, push a new version"
        _fail(json_output, context, "version-exists", message, ())
    except PER_FILE_ERRORS as error:
        _fail(json_output, context, error_reason(error), error_message(error), (), ExitCode.ERROR)


def _fail(
    json_output: bool,
    context: dict[str, object],
    reason: str,
    message: str,
    problems: tuple[FieldProblem, ...],
    code: ExitCode = ExitCode.FAILED,
) -> NoReturn:
    if json_output:
        failure = {"status": "failed", "error": reason, "message": message}
        write_stdout_line(json_line({**context, **failure, "problems": problems_json(problems)}))
    else:
        err = Console(stderr=True)
        err.print(f"[red]error:[/] {message}", highlight=False)
        print_problems(err, problems)
    raise typer.Exit(code)


@models_app.command()
def push(
    path: Annotated[
        Path, typer.Argument(help="A TorchScript file (.pt) or a Triton model directory.")
    ],
    name: Annotated[str | None, typer.Option("--name", help="Replaces the card's name.")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Replaces the card's version.")
    ] = None,
    card: Annotated[
        Path | None,
        typer.Option(
            "--card",
            help="The model card (JSON or YAML); default card.json or card.yaml beside the "
            ".pt file, or inside the directory.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only check the model; send nothing.")
    ] = False,
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Check a model and its card here, then push it as a new, immutable version."""
    with _reported(json_output, path=str(path)):
        prepared = prepare_push(path, name=name, version=version, card_path=card)
    context = {"name": prepared.card.name, "version": prepared.card.version}
    if dry_run:
        files = list(prepared.package.files)
        _done(json_output, {**context, "status": "checked", "files": files}, "valid")
        return
    with _connect(api, token) as client, _reported(json_output, **context):
        pushed = client.push(prepared.card, prepared.archive())
    summary = f"pushed {pushed.name} version {pushed.version} ({len(pushed.files)} files)"
    _done(json_output, {"status": "pushed", **pushed.model_dump(mode="json")}, summary)


def _done(json_output: bool, data: dict[str, object], text: str) -> None:
    if json_output:
        write_stdout_line(json_line(data))
    else:
        Console().print(text, markup=False, highlight=False)


@models_app.command()
def load(
    name: NameArgument,
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Load a model in Triton; ready only once a canary request gave the declared shapes."""
    with _connect(api, token) as client, _reported(json_output, name=name):
        result = client.load(name)
    _done(json_output, result.model_dump(mode="json"), describe_load(result))


@models_app.command()
def unload(
    name: NameArgument,
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Unload a model from Triton (routes stay; its slides wait until it is loaded again)."""
    with _connect(api, token) as client, _reported(json_output, name=name):
        result = client.unload(name)
    _done(json_output, result.model_dump(mode="json"), describe_load(result))


M = TypeVar("M", bound=BaseModel)


def _show(json_output: bool, answer: M, table: Callable[[M], Table]) -> None:
    """An answer as one JSON line, or as its table."""
    if json_output:
        write_stdout_line(json_line(answer.model_dump(mode="json")))
    else:
        Console().print(table(answer))


@models_app.command("list")
def list_models(
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Every model with its versions and their state."""
    with _connect(api, token) as client, _reported(json_output):
        listing = client.models()
    _show(json_output, listing, models_table)


@models_app.command()
def status(
    name: NameArgument,
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """A model's versions (state, device), load time and Triton's statistics."""
    with _connect(api, token) as client, _reported(json_output, name=name):
        detail = client.model(name)
    if json_output:
        write_stdout_line(json_line(detail.model_dump(mode="json")))
        return
    for table in status_tables(detail):
        Console().print(table)


@models_app.command()
def route(
    name: NameArgument,
    tenant: TenantOption,
    min_qc: Annotated[
        Literal["pass", "warn"],
        typer.Option("--min-qc", help="pass: only slides QC passed; warn: passed or warned."),
    ],
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project's slides.")
    ] = None,
    stain: Annotated[str | None, typer.Option("--stain", help="Only slides of this stain.")] = None,
    version: VersionOption = None,
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Run a model on a tenant's slides once QC passes them (replaces its route there)."""
    with _connect(api, token) as client, _reported(json_output, name=name, tenant=tenant):
        saved = client.set_route(
            name, tenant=tenant, min_qc=min_qc, project=project, stain=stain, version=version
        )
    _done(json_output, saved.model_dump(mode="json"), describe_route(saved))


@models_app.command()
def routes(
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Every route: which models run on which slides."""
    with _connect(api, token) as client, _reported(json_output):
        listing = client.routes()
    _show(json_output, listing, routes_table)


@models_app.command()
def unroute(
    name: NameArgument,
    tenant: TenantOption,
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Stop running a model on a tenant's new slides (results already made stay)."""
    with _connect(api, token) as client, _reported(json_output, name=name, tenant=tenant):
        client.delete_route(name, tenant=tenant)
    data: dict[str, object] = {"name": name, "tenant": tenant, "status": "deleted"}
    _done(json_output, data, f"{name} no longer runs on tenant {tenant}'s slides")


def _parse_since(value: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC (the platform's clock)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not an ISO date (2026-01-31[T12:00])") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_slides(values: list[str] | None) -> list[str] | None:
    """Slide ids from ``--slides a,b --slides c``, each checked to be a UUID."""
    if values is None:
        return None
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for slide_id in ids:
        try:
            uuid.UUID(slide_id)
        except ValueError as error:
            raise typer.BadParameter(f"{slide_id!r} is not a slide id") from error
    if not ids:
        raise typer.BadParameter("no slide ids")
    return ids


@models_app.command()
def backfill(
    name: NameArgument,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Slides QC judged since this ISO date (UTC if no zone)."),
    ] = None,
    slides: Annotated[
        list[str] | None,
        typer.Option("--slides", help="Slide ids, comma-separated (repeatable)."),
    ] = None,
    version: VersionOption = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the progress until done.")
    ] = True,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to follow the progress.")
    ] = DEFAULT_BACKFILL_TIMEOUT_S,
    poll_interval_s: Annotated[
        float, typer.Option("--poll-interval", min=0, help="Seconds between progress checks.")
    ] = 2.0,
    json_output: JsonOption = False,
    api: InferenceApiOption = None,
    token: TokenOption = None,
) -> None:
    """Run a model on slides already in the repository (those QC passed or warned)."""
    if (since is None) == (slides is None):
        Console(stderr=True).print("[red]error:[/] give either --since or --slides")
        raise typer.Exit(USAGE_ERROR)
    moment = _parse_since(since) if since is not None else None
    slide_ids = _parse_slides(slides)
    with _connect(api, token) as client, _reported(json_output, name=name):
        started = client.backfill(name, since=moment, slides=slide_ids, version=version)
        progress = BackfillProgress(requested=started.requested)
        if wait and started.requested:
            progress = _follow(client, name, started, timeout_s, poll_interval_s, json_output)
    _report_backfill(name, started, progress, json_output, followed=wait)


def _follow(
    client: ModelsClient,
    name: str,
    started: BackfillStarted,
    timeout_s: float,
    poll_interval_s: float,
    json_output: bool,
) -> BackfillProgress:
    if json_output:
        return client.wait_backfill(
            name, started.backfill_id, timeout_s=timeout_s, poll_interval_s=poll_interval_s
        )
    with BackfillBar(Console(stderr=True), name, started.requested) as bar:
        return client.wait_backfill(
            name,
            started.backfill_id,
            timeout_s=timeout_s,
            poll_interval_s=poll_interval_s,
            on_progress=bar.update,
        )


def _report_backfill(
    name: str,
    started: BackfillStarted,
    progress: BackfillProgress,
    json_output: bool,
    *,
    followed: bool,
) -> None:
    if not followed:
        outcome, code = "requested", ExitCode.OK
    elif not progress.finished:
        outcome, code = "timeout", ExitCode.TIMEOUT
    else:
        outcome, code = "done", ExitCode.FAILED if progress.failed else ExitCode.OK
    data = {
        "name": name,
        "backfill_id": started.backfill_id,
        **progress.model_dump(mode="json"),
        "outcome": outcome,
    }
    text = (
        f"backfill {started.backfill_id} of {name}: {progress.requested} slides requested, "
        f"{progress.done} done, {progress.failed} failed ({outcome})"
    )
    _done(json_output, data, text)
    if code is not ExitCode.OK:
        raise typer.Exit(code)

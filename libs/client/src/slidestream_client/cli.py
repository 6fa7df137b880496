"""``slidestream``: the command partners, AI teams and operators type.

Sub-commands from other installed slidestream packages plug in through the ``slidestream.cli``
entry-point group (the developer stack adds ``slidestream stack``; see :mod:`.plugins`), so a
partner who installs only this client gets a CLI without the local-stack machinery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from slidestream_client import __version__
from slidestream_client.cli_options import JsonOption, TokenOption, require_token
from slidestream_client.files import InputError, collect_files, parse_meta
from slidestream_client.models import SlideStatus
from slidestream_client.models_cli import models_app
from slidestream_client.output import (
    PER_FILE_ERRORS,
    USAGE_ERROR,
    ExitCode,
    describe_state,
    error_message,
    error_reason,
    failed_result,
    json_line,
    status_json,
    summary_table,
    wait_exit_code,
    what_to_do,
    write_stdout_line,
)
from slidestream_client.plugins import mount_plugins
from slidestream_client.sdk import (
    DEFAULT_CHUNK_SIZE_BYTES,
    DEFAULT_VERIFY_TIMEOUT_S,
    MIB,
    SlidestreamClient,
)
from slidestream_client.search_cli import search_app
from slidestream_client.settings import ClientSettings
from slidestream_client.upload_run import print_batch_report, upload_all
from slidestream_contracts.slide_facts import SlideFactsError, parse_slide_facts
from slidestream_contracts.states import Stage, WaitOutcome

app = typer.Typer(
    name="slidestream",
    help="slidestream: share whole-slide images safely and make them ready for AI.",
    no_args_is_help=True,
)


@app.command()
def version() -> None:
    """Print the client version."""
    typer.echo(__version__)


DEFAULT_PARALLEL = 4
DEFAULT_WAIT_TIMEOUT_S = 600.0

ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        help="Upload API base URL (env SLIDESTREAM_API; else .local/stack.env's UPLOAD_API).",
        show_default=False,
    ),
]

# -- upload's arguments and options ----------------------------------------------------------
PathsArgument = Annotated[
    list[Path],
    typer.Argument(help="Slide files, or directories to upload recursively (hidden skipped)."),
]
ManifestOption = Annotated[
    Path | None,
    typer.Option(
        "--manifest",
        help="Batch manifest (CSV, or .json): registered first, the uploads name its batch "
        "(a rerun with the same manifest reuses that batch).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
MetaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--meta",
        help="key=value metadata for every file (repeatable). Slide facts the file may lack: "
        "mpp_um (µm per pixel), objective_power (e.g. 40x), scanner.",
    ),
]
ParallelOption = Annotated[
    int, typer.Option("--parallel", min=1, max=32, help="Files uploaded at once.")
]
ChunkSizeMibOption = Annotated[
    int,
    typer.Option(
        "--chunk-size-mib",
        min=1,
        max=4096,
        help="Bytes per tus PATCH request, in MiB (streamed: costs no memory).",
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where resumable uploads are remembered "
        "(env SLIDESTREAM_STATE_DIR; default ~/.cache/slidestream/uploads).",
        file_okay=False,
        show_default=False,
    ),
]
VerifyTimeoutOption = Annotated[
    float,
    typer.Option(
        "--verify-timeout",
        min=0,
        help="Seconds to wait, after the last byte, for the server to verify each file.",
    ),
]

# -- status's arguments and options ----------------------------------------------------------
SlideIdArgument = Annotated[str, typer.Argument(help="The slide id printed by `upload`.")]
WaitOption = Annotated[
    Stage | None,
    typer.Option(
        "--wait",
        help="Wait until the slide has completed this stage (whatever its verdict).",
        case_sensitive=False,
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0, help="Seconds to wait with --wait.")
]


def _connect(
    api: str | None, token: str | None, settings: ClientSettings, state_dir: Path | None = None
) -> SlidestreamClient:
    err = Console(stderr=True)
    api_url = api or settings.api
    if not api_url:
        err.print(
            "[red]error:[/] no API URL: pass --api, set SLIDESTREAM_API, or run inside the "
            "checkout after `make up` (its .local/stack.env names UPLOAD_API)"
        )
        raise typer.Exit(USAGE_ERROR)
    token_value = require_token(token, settings)
    return SlidestreamClient(api_url, token_value, state_dir=state_dir or settings.state_dir)


@app.command()
def upload(
    paths: PathsArgument,
    manifest: ManifestOption = None,
    meta: MetaOption = None,
    json_output: JsonOption = False,
    api: ApiOption = None,
    token: TokenOption = None,
    parallel: ParallelOption = DEFAULT_PARALLEL,
    chunk_size_mib: ChunkSizeMibOption = DEFAULT_CHUNK_SIZE_BYTES // MIB,
    state_dir: StateDirOption = None,
    verify_timeout_s: VerifyTimeoutOption = DEFAULT_VERIFY_TIMEOUT_S,
) -> None:
    """Upload slides with tus: resumable (rerun after a crash continues), checksummed, parallel.

    Exit codes: 0 every file uploaded; 1 a file failed; 2 bad arguments;
    130 interrupted (rerun the same command to resume).
    """
    err = Console(stderr=True)
    settings = ClientSettings.load()
    files, meta_pairs = _upload_inputs(paths, meta, err)
    with _connect(api, token, settings, state_dir) as client:
        batch_id = _prepare_batch(client, files, manifest, json_output, err)
        results, interrupted = upload_all(
            client,
            files,
            batch_id=batch_id,
            meta=meta_pairs,
            chunk_size_bytes=chunk_size_mib * MIB,
            parallel=parallel,
            verify_timeout_s=verify_timeout_s,
            json_output=json_output,
            err=err,
        )
        if not json_output:
            Console().print(summary_table(results))
            if batch_id is not None and not interrupted:
                print_batch_report(client, batch_id, err)
    if interrupted:
        err.print("[yellow]interrupted:[/] rerun the same command to resume")
        raise typer.Exit(ExitCode.INTERRUPTED)
    if any(result.status == "failed" for result in results):
        raise typer.Exit(ExitCode.FAILED)


def _upload_inputs(
    paths: list[Path], meta: list[str] | None, err: Console
) -> tuple[list[Path], dict[str, str]]:
    """The files to upload and the ``--meta`` pairs; a usage error when there are none."""
    try:
        files = collect_files(paths)
        meta_pairs = parse_meta(meta or [])
    except InputError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(USAGE_ERROR) from error
    if not files:
        err.print("[red]error:[/] no files to upload (hidden files are skipped)")
        raise typer.Exit(USAGE_ERROR)
    return files, meta_pairs


def _prepare_batch(
    client: SlidestreamClient,
    files: list[Path],
    manifest: Path | None,
    json_output: bool,
    err: Console,
) -> str | None:
    """Check the API answers and register ``manifest``; every file fails when either fails."""
    try:
        client.info()
        return client.ensure_batch(manifest) if manifest is not None else None
    except PER_FILE_ERRORS as error:
        if json_output:
            for path in files:
                write_stdout_line(json_line(failed_result(path, error).to_json()))
        else:
            what = "the manifest was refused" if manifest is not None else "cannot upload"
            err.print(f"[red]error:[/] {what}: {error_message(error)}")
        raise typer.Exit(ExitCode.FAILED) from error


@app.command()
def status(
    slide_id: SlideIdArgument,
    wait: WaitOption = None,
    timeout_s: TimeoutOption = DEFAULT_WAIT_TIMEOUT_S,
    json_output: JsonOption = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Show a slide's state, or wait for a pipeline stage.

    Exit codes: 0 the stage was completed (or, without --wait, the state was shown);
    1 the slide was rejected or failed before the stage; 2 timeout;
    3 the server could not answer (token refused, no such slide, unreachable).
    """
    err = Console(stderr=True)
    settings = ClientSettings.load()
    with _connect(api, token, settings) as client:
        current, outcome = _fetch_status(client, slide_id, wait, timeout_s, json_output, err)
    if json_output:
        write_stdout_line(json_line(status_json(current, outcome=outcome)))
    elif outcome is None:
        Console().print(f"{slide_id}: {describe_state(current)}")
    else:
        assert wait is not None
        Console().print(
            f"{slide_id}: {_verdict(outcome, wait, timeout_s)} ({describe_state(current)})"
        )
    action = what_to_do(current)
    if action and not json_output:
        Console().print(f"[bold]What you can do:[/] {action}")
    if outcome is not None:
        raise typer.Exit(wait_exit_code(outcome))


def _fetch_status(
    client: SlidestreamClient,
    slide_id: str,
    wait: Stage | None,
    timeout_s: float,
    json_output: bool,
    err: Console,
) -> tuple[SlideStatus, WaitOutcome | None]:
    """The slide's status now, or once ``wait`` is decided (then with the outcome); a server
    that cannot answer is reported and exits with :attr:`ExitCode.ERROR`."""
    try:
        if wait is None:
            return client.slide(slide_id), None
        seen: list[str] = []

        def show(update: SlideStatus) -> None:
            line = describe_state(update)
            if not json_output and (not seen or seen[-1] != line):
                seen.append(line)
                err.print(f"[dim]{slide_id}:[/] {line}")

        result = client.wait(slide_id, wait, timeout_s=timeout_s, on_status=show)
        return result.status, result.outcome
    except PER_FILE_ERRORS as error:
        if json_output:
            write_stdout_line(
                json_line(
                    {
                        "slide_id": slide_id,
                        "state": None,
                        "step": None,
                        "reason": error_reason(error),
                        "error": error_message(error),
                    }
                )
            )
        else:
            err.print(f"[red]error:[/] {error_message(error)}")
        raise typer.Exit(ExitCode.ERROR) from error


def _verdict(outcome: WaitOutcome, wait: Stage, timeout_s: float) -> str:
    """How ``status --wait`` ended, in colour."""
    return {
        WaitOutcome.REACHED: f"[green]{wait.value} completed[/]",
        WaitOutcome.STOPPED: f"[red]stopped before {wait.value}[/]",
        WaitOutcome.PENDING: f"[yellow]timed out after {timeout_s:g} s waiting for {wait.value}[/]",
    }[outcome]


slides_app = typer.Typer(name="slides", help="Act on one slide: supply what a failed one lacked.")


@slides_app.command("fix")
def fix(
    slide_id: SlideIdArgument,
    mpp_um: Annotated[
        str | None, typer.Option("--mpp-um", help="Level 0's spacing, µm per pixel (0.25).")
    ] = None,
    objective_power: Annotated[
        str | None, typer.Option("--objective-power", help="The magnification (40 or 40x).")
    ] = None,
    scanner: Annotated[str | None, typer.Option("--scanner", help="The scanner's model.")] = None,
    json_output: JsonOption = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Supply what a failed slide lacked (a slide without pixel spacing: --mpp-um); the step
    that failed runs again, once. `slidestream status SLIDE --wait qc` follows it."""
    given = {"mpp_um": mpp_um, "objective_power": objective_power, "scanner": scanner}
    facts = {name: value for name, value in given.items() if value is not None}
    err = Console(stderr=True)
    try:
        parse_slide_facts(facts)
    except SlideFactsError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(USAGE_ERROR) from error
    with _connect(api, token, ClientSettings.load()) as client:
        try:
            fixed = client.fix(slide_id, facts)
        except PER_FILE_ERRORS as error:
            if json_output:
                failure = {"slide_id": slide_id, "status": "failed"}
                write_stdout_line(json_line({**failure, "reason": error_reason(error)}))
            else:
                err.print(f"[red]error:[/] {error_message(error)}")
            raise typer.Exit(ExitCode.FAILED) from error
    if json_output:
        write_stdout_line(json_line(fixed.model_dump(mode="json")))
    else:
        Console().print(f"{slide_id}: {fixed.step} runs again with {fixed.declared}")


app.add_typer(models_app, name="models")
app.add_typer(search_app, name="search")
app.add_typer(slides_app, name="slides")
mount_plugins(app)


def main() -> None:
    app()

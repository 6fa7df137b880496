"""``slidestream``: the command partners, AI teams and operators type.

Sub-commands from other installed slidestream packages plug in through the ``slidestream.cli``
entry-point group (the developer stack adds ``slidestream stack``), so a partner who installs only
this client gets a CLI without the local-stack machinery.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from slidestream_client import __version__
from slidestream_client.errors import SlidestreamError, UploadCancelledError
from slidestream_client.files import InputError, collect_files, parse_meta
from slidestream_client.models import SlideStatus, UploadResult
from slidestream_client.output import (
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
)
from slidestream_client.progress import ProgressBoard
from slidestream_client.sdk import (
    DEFAULT_CHUNK_SIZE_BYTES,
    DEFAULT_VERIFY_TIMEOUT_S,
    MIB,
    SlidestreamClient,
    UploadProgress,
)
from slidestream_client.settings import ClientSettings
from slidestream_contracts.states import Stage, WaitOutcome

ENTRY_POINT_GROUP = "slidestream.cli"

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
_PER_FILE_ERRORS = (SlidestreamError, OSError, ValidationError)
"""What fails one file without stopping the others (ValidationError: an unexpected answer)."""

ApiOption = Annotated[
    str | None,
    typer.Option("--api", help="Upload API base URL (env SLIDESTREAM_API).", show_default=False),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token (env SLIDESTREAM_TOKEN; prefer it: arguments are visible to ps).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _connect(
    api: str | None, token: str | None, settings: ClientSettings, state_dir: Path | None = None
) -> SlidestreamClient:
    err = Console(stderr=True)
    api_url = api or settings.api
    token_value = token or (settings.token.get_secret_value() if settings.token else None)
    if not api_url:
        err.print("[red]error:[/] no API URL: pass --api or set SLIDESTREAM_API")
        raise typer.Exit(USAGE_ERROR)
    if not token_value:
        err.print("[red]error:[/] no token: set SLIDESTREAM_TOKEN or pass --token")
        raise typer.Exit(USAGE_ERROR)
    return SlidestreamClient(api_url, token_value, state_dir=state_dir or settings.state_dir)


class _CancelOnly:
    """Progress listener of ``--json`` runs: no bars, but Ctrl-C still stops hashing."""

    def __init__(self, cancel: threading.Event) -> None:
        self._cancel = cancel

    def hashing(self, done_bytes: int) -> None:
        if self._cancel.is_set():
            raise UploadCancelledError("interrupted while hashing")

    def uploading(self, offset_bytes: int) -> None:
        pass

    def verifying(self) -> None:
        pass


@app.command()
def upload(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Slide files, or directories to upload recursively (hidden skipped)."),
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="Batch manifest (CSV, or .json): registered first, the uploads name its batch "
            "(a rerun with the same manifest reuses that batch).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="key=value metadata for every file (repeatable)."),
    ] = None,
    json_output: JsonOption = False,
    api: ApiOption = None,
    token: TokenOption = None,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, max=32, help="Files uploaded at once.")
    ] = DEFAULT_PARALLEL,
    chunk_size_mib: Annotated[
        int,
        typer.Option(
            "--chunk-size-mib",
            min=1,
            max=4096,
            help="Bytes per tus PATCH request, in MiB (streamed: costs no memory).",
        ),
    ] = DEFAULT_CHUNK_SIZE_BYTES // MIB,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Where resumable uploads are remembered "
            "(env SLIDESTREAM_STATE_DIR; default ~/.cache/slidestream/uploads).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    verify_timeout_s: Annotated[
        float,
        typer.Option(
            "--verify-timeout",
            min=0,
            help="Seconds to wait, after the last byte, for the server to verify each file.",
        ),
    ] = DEFAULT_VERIFY_TIMEOUT_S,
) -> None:
    """Upload slides with tus: resumable (rerun after a crash continues), checksummed, parallel.

    Exit codes: 0 every file uploaded; 1 a file failed; 2 bad arguments;
    130 interrupted (rerun the same command to resume).
    """
    err = Console(stderr=True)
    settings = ClientSettings()
    try:
        files = collect_files(paths)
        meta_pairs = parse_meta(meta or [])
    except InputError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(USAGE_ERROR) from error
    if not files:
        err.print("[red]error:[/] no files to upload (hidden files are skipped)")
        raise typer.Exit(USAGE_ERROR)
    with _connect(api, token, settings, state_dir) as client:
        try:
            client.info()
            batch_id = client.ensure_batch(manifest) if manifest is not None else None
        except _PER_FILE_ERRORS as error:
            if json_output:
                for path in files:
                    _stdout(json_line(failed_result(path, error).to_json()))
            else:
                what = "the manifest was refused" if manifest is not None else "cannot upload"
                err.print(f"[red]error:[/] {what}: {error_message(error)}")
            raise typer.Exit(ExitCode.FAILED) from error
        results, interrupted = _upload_all(
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
                _print_batch(client, batch_id, err)
    if interrupted:
        err.print("[yellow]interrupted:[/] rerun the same command to resume")
        raise typer.Exit(ExitCode.INTERRUPTED)
    if any(result.status == "failed" for result in results):
        raise typer.Exit(ExitCode.FAILED)


def _upload_all(
    client: SlidestreamClient,
    files: list[Path],
    *,
    batch_id: str | None,
    meta: dict[str, str],
    chunk_size_bytes: int,
    parallel: int,
    verify_timeout_s: float,
    json_output: bool,
    err: Console,
) -> tuple[list[UploadResult], bool]:
    """Upload in ``parallel`` threads (tuspy is synchronous); results in ``files`` order."""
    cancel = threading.Event()
    print_lock = threading.Lock()
    sizes = {}
    for path in files:
        try:
            sizes[path] = path.stat().st_size
        except OSError:
            sizes[path] = 0
    with ExitStack() as stack:
        board = None
        if not json_output:
            board = stack.enter_context(ProgressBoard(err, sum(sizes.values()), len(files)))

        def work(path: Path) -> UploadResult:
            bar = board.file(path, sizes[path], cancel) if board is not None else None
            listener: UploadProgress = bar if bar is not None else _CancelOnly(cancel)
            try:
                result = client.upload_file(
                    path,
                    batch_id=batch_id,
                    meta=meta,
                    chunk_size_bytes=chunk_size_bytes,
                    progress=listener,
                    cancel=cancel,
                    verify_timeout_s=verify_timeout_s,
                )
            except _PER_FILE_ERRORS as error:
                result = failed_result(path, error, batch_id=batch_id)
            finally:
                if bar is not None:
                    bar.close()
            if json_output:
                with print_lock:
                    _stdout(json_line(result.to_json()))
            return result

        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="upload")
        futures: dict[Future[UploadResult], Path] = {pool.submit(work, p): p for p in files}
        interrupted = False
        try:
            for _ in as_completed(futures):
                pass
        except KeyboardInterrupt:
            interrupted = True
            cancel.set()  # running uploads stop at their next block; their state is kept
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    results = []
    for future, path in futures.items():
        try:
            results.append(future.result())
        except CancelledError:
            results.append(failed_result(path, UploadCancelledError("not started")))
    return results, interrupted


def _print_batch(client: SlidestreamClient, batch_id: str, err: Console) -> None:
    try:
        report = client.batch(batch_id)
    except _PER_FILE_ERRORS as error:
        err.print(f"[yellow]batch {batch_id}:[/] report unavailable: {error_message(error)}")
        return
    parts = [f"{len(report.matched)}/{report.rows} matched"]
    for label, names in (
        ("missing", report.missing),
        ("extra", report.extra),
        ("checksum mismatch", report.checksum_mismatch),
        ("pending", report.pending),
    ):
        if names:
            shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
            parts.append(f"{label}: {shown}")
    colour = "green" if report.complete else "yellow"
    Console().print(f"[{colour}]batch {batch_id}[/]: " + "; ".join(parts))


@app.command()
def status(
    slide_id: Annotated[str, typer.Argument(help="The slide id printed by `upload`.")],
    wait: Annotated[
        Stage | None,
        typer.Option(
            "--wait",
            help="Wait until the slide has completed this stage (whatever its verdict).",
            case_sensitive=False,
        ),
    ] = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait with --wait.")
    ] = DEFAULT_WAIT_TIMEOUT_S,
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
    settings = ClientSettings()
    with _connect(api, token, settings) as client:
        try:
            if wait is None:
                current = client.slide(slide_id)
                outcome: WaitOutcome | None = None
            else:
                seen: list[str] = []

                def show(update: SlideStatus) -> None:
                    line = describe_state(update)
                    if not json_output and (not seen or seen[-1] != line):
                        seen.append(line)
                        err.print(f"[dim]{slide_id}:[/] {line}")

                result = client.wait(slide_id, wait, timeout_s=timeout_s, on_status=show)
                current, outcome = result.status, result.outcome
        except _PER_FILE_ERRORS as error:
            if json_output:
                _stdout(
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
    if json_output:
        _stdout(json_line(status_json(current, outcome=outcome)))
    elif outcome is None:
        Console().print(f"{slide_id}: {describe_state(current)}")
    else:
        assert wait is not None
        verdict = {
            WaitOutcome.REACHED: f"[green]{wait.value} completed[/]",
            WaitOutcome.STOPPED: f"[red]stopped before {wait.value}[/]",
            WaitOutcome.PENDING: f"[yellow]timed out after {timeout_s:g} s waiting for "
            f"{wait.value}[/]",
        }[outcome]
        Console().print(f"{slide_id}: {verdict} ({describe_state(current)})")
    action = what_to_do(current)
    if action and not json_output:
        Console().print(f"[bold]What you can do:[/] {action}")
    if outcome is not None:
        raise typer.Exit(wait_exit_code(outcome))


def _mount_plugins(root: typer.Typer) -> None:
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        plugin = entry_point.load()
        if isinstance(plugin, typer.Typer):
            root.add_typer(plugin, name=entry_point.name)


_mount_plugins(app)


def main() -> None:
    app()

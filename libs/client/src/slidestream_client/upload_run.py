"""One ``slidestream upload`` run over many files: threads, progress, results, batch report."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console

from slidestream_client.errors import UploadCancelledError
from slidestream_client.models import UploadResult
from slidestream_client.output import (
    PER_FILE_ERRORS,
    error_message,
    failed_result,
    json_line,
    write_stdout_line,
)
from slidestream_client.progress import ProgressBoard, UploadProgress
from slidestream_client.sdk import SlidestreamClient


class CancelOnly:
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


def upload_all(
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
    """Upload in ``parallel`` threads (tuspy is synchronous); results in ``files`` order, and
    whether Ctrl-C interrupted the run."""
    cancel = threading.Event()
    print_lock = threading.Lock()
    sizes = _sizes_bytes(files)
    with ExitStack() as stack:
        board = None
        if not json_output:
            board = stack.enter_context(ProgressBoard(err, sum(sizes.values()), len(files)))

        def work(path: Path) -> UploadResult:
            bar = board.file(path, sizes[path], cancel) if board is not None else None
            listener: UploadProgress = bar if bar is not None else CancelOnly(cancel)
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
            except PER_FILE_ERRORS as error:
                result = failed_result(path, error, batch_id=batch_id)
            finally:
                if bar is not None:
                    bar.close()
            if json_output:
                with print_lock:
                    write_stdout_line(json_line(result.to_json()))
            return result

        futures, interrupted = _run_in_pool(work, files, parallel, cancel)
    return _results_in_order(futures), interrupted


def _sizes_bytes(files: list[Path]) -> dict[Path, int]:
    """Each file's size for the total bar (0 when unreadable: its upload reports why)."""
    sizes = {}
    for path in files:
        try:
            sizes[path] = path.stat().st_size
        except OSError:
            sizes[path] = 0
    return sizes


def _run_in_pool(
    work: Callable[[Path], UploadResult],
    files: list[Path],
    parallel: int,
    cancel: threading.Event,
) -> tuple[dict[Future[UploadResult], Path], bool]:
    """Run ``work`` on every file until all are done or Ctrl-C (then: interrupted)."""
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
    return futures, interrupted


def _results_in_order(futures: dict[Future[UploadResult], Path]) -> list[UploadResult]:
    results = []
    for future, path in futures.items():
        try:
            results.append(future.result())
        except CancelledError:
            results.append(failed_result(path, UploadCancelledError("not started")))
    return results


def print_batch_report(client: SlidestreamClient, batch_id: str, err: Console) -> None:
    """One line: how the batch's uploads compare with its manifest."""
    try:
        report = client.batch(batch_id)
    except PER_FILE_ERRORS as error:
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

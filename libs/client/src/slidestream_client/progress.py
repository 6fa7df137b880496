"""Progress bars of ``slidestream upload``: one per file in flight and a total (bytes, rate,
ETA); of ``slidestream models backfill``; of ``slidestream search --export``. Rich's
``Progress`` is thread-safe; each upload thread reports through its own listener."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from slidestream_client.errors import UploadCancelledError
from slidestream_client.model_shapes import BackfillProgress

_NAME_WIDTH = 32


class UploadProgress(Protocol):
    """What :meth:`slidestream_client.sdk.SlidestreamClient.upload_file` reports while it works
    (from its thread)."""

    def hashing(self, done_bytes: int) -> None: ...
    def uploading(self, offset_bytes: int) -> None:
        """The server's offset: first the one resumed from, then after every block sent."""

    def verifying(self) -> None: ...


class NoProgress:
    def hashing(self, done_bytes: int) -> None:
        pass

    def uploading(self, offset_bytes: int) -> None:
        pass

    def verifying(self) -> None:
        pass


def _short(name: str) -> str:
    return name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 1] + "…"


class ProgressBoard:
    """The total bar counts the bytes this run sends: bytes the server already holds (resumed
    uploads) are taken off its total, so the rate and ETA are the transfer's, not inflated."""

    def __init__(self, console: Console, total_bytes: int, file_count: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._file_count = file_count
        self._done = 0
        self._lock = threading.Lock()
        self.total = self.progress.add_task(self._total_label(), total=total_bytes)

    def _total_label(self) -> str:
        return f"[bold]total[/] {self._done}/{self._file_count} files"

    def __enter__(self) -> ProgressBoard:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def file(self, path: Path, size_bytes: int, cancel: threading.Event) -> FileProgress:
        return FileProgress(self, path, size_bytes, cancel)

    def finished(self) -> None:
        with self._lock:
            self._done += 1
            label = self._total_label()
        self.progress.update(self.total, description=label)


class FileProgress:
    """One file's bar: hashing, then sending (from the resumed offset), then verifying."""

    def __init__(
        self, board: ProgressBoard, path: Path, size_bytes: int, cancel: threading.Event
    ) -> None:
        self._board = board
        self._progress = board.progress
        self._name = _short(path.name)
        self._size_bytes = size_bytes
        self._cancel = cancel
        self._task: TaskID | None = None
        self._last_offset: int | None = None

    def _ensure_task(self, description: str) -> TaskID:
        if self._task is None:
            self._task = self._progress.add_task(description, total=self._size_bytes)
        return self._task

    def hashing(self, done_bytes: int) -> None:
        if self._cancel.is_set():
            raise UploadCancelledError("interrupted while hashing")
        task = self._ensure_task(f"[dim]sha256[/] {self._name}")
        self._progress.update(task, completed=done_bytes)

    def uploading(self, offset_bytes: int) -> None:
        task = self._ensure_task(self._name)
        if self._last_offset is None:
            # Bytes the server already holds are not this run's transfer (see ProgressBoard).
            self._progress.reset(task, total=self._size_bytes, completed=offset_bytes)
            self._progress.update(task, description=self._name)
            total_task = self._progress.tasks[self._board.total]
            remaining = (total_task.total or 0) - offset_bytes
            self._progress.update(self._board.total, total=max(remaining, 0))
        else:
            self._progress.update(task, completed=offset_bytes)
            self._progress.advance(self._board.total, offset_bytes - self._last_offset)
        self._last_offset = offset_bytes

    def verifying(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=f"[dim]verify[/] {self._name}")

    def close(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._board.finished()


class BackfillBar:
    """``slidestream models backfill``: slides analysed (or failed) of those requested."""

    def __init__(self, console: Console, model_name: str, requested: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("slides, {task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self.progress.add_task(
            f"backfill {_short(model_name)}", total=requested, failed=0
        )

    def __enter__(self) -> BackfillBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, progress: BackfillProgress) -> None:
        self.progress.update(
            self._task,
            total=progress.requested,
            completed=progress.done + progress.failed,
            failed=progress.failed,
        )


class ExportBar:
    """``slidestream search --export``: rows and bytes written so far (the server streams the
    cohort without announcing its size, so there is no bar to fill, only counts and a rate)."""

    def __init__(self, console: Console, path: Path) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[rows]} rows"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._task = self.progress.add_task(f"export to {_short(str(path))}", total=None, rows=0)

    def __enter__(self) -> ExportBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, rows: int, size_bytes: int) -> None:
        self.progress.update(self._task, completed=size_bytes, rows=rows)

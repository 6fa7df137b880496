"""A batch of generated slides, uploaded as a partner uploads them (the SDK over tus), in
parallel and in the background, so that a fault can happen while they travel.

The slides are small painted H&E pyramids (``slidestream_samples.painting``), each with its own
seed (so its own bytes and slide id), with pixel spacing: every one can reach QC.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slidestream_client.errors import SlidestreamError, UploadRejectedError
from slidestream_client.sdk import SlidestreamClient
from slidestream_client.tus import SlideUploader

SLIDE_WIDTH_PX = 2048
SLIDE_HEIGHT_PX = 1536
PARALLEL_UPLOADS = 4
VERIFY_TIMEOUT_S = 600.0
UPLOAD_ATTEMPTS = 4
RETRY_PAUSE_S = 3.0


def make_slides(
    folder: Path,
    count: int,
    *,
    first_seed: int = 0,
    size_px: tuple[int, int] = (SLIDE_WIDTH_PX, SLIDE_HEIGHT_PX),
) -> list[Path]:
    """``count`` painted slides (about 0.9 MB each at the default size) under ``folder``,
    painted once."""
    # OpenCV is needed only here: imported late so that collecting the suite stays light.
    from slidestream_samples.painting import paint_tissue, write_tiff_pyramid

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        seed = first_seed + index
        width, height = size_px
        path = folder / f"slide-{width}x{height}-{seed:04d}.tiff"
        if not path.exists():
            painted = paint_tissue(width, height, seed=seed)
            write_tiff_pyramid(path, painted.rgb, painted.mpp_um)
        paths.append(path)
    return paths


class RenamingClient(SlidestreamClient):
    """The SDK, sending another file name than the file's own for some files: names no file
    system holds (``../../etc/passwd.svs``, a NUL) travel exactly as a hostile client sends
    them, over the same tus path."""

    def __init__(self, *args: Any, names: Mapping[Path, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._names = {path.resolve(): name for path, name in names.items()}

    def _send(
        self, path: Path, fingerprint: str, metadata: dict[str, str], *rest: Any
    ) -> SlideUploader:
        name = self._names.get(path)
        sent = metadata if name is None else {**metadata, "filename": name}
        return super()._send(path, fingerprint, sent, *rest)


@dataclass
class Uploaded:
    path: Path
    slide_id: str | None = None
    verdict: str = ""
    """``accepted`` or ``rejected`` once the upload service answered; ``""`` otherwise."""
    error: str = ""
    """The last failure of the transfer (when it failed and was run again)."""
    attempts: int = 1
    finished_at: float = 0.0


@dataclass
class BatchUpload:
    """Uploads ``files`` with ``PARALLEL_UPLOADS`` at a time, from :meth:`start` on."""

    api: str
    token: str
    files: list[Path]
    state_dir: Path
    names: Mapping[Path, str] = field(default_factory=dict)
    """The file name sent for a file, when not its own (:class:`RenamingClient`)."""
    results: list[Uploaded] = field(default_factory=list)
    _futures: list[Future[Uploaded]] = field(default_factory=list)
    _pool: ThreadPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> BatchUpload:
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL_UPLOADS)
        client = RenamingClient(self.api, self.token, state_dir=self.state_dir, names=self.names)
        self._futures = [self._pool.submit(self._one, client, path) for path in self.files]
        return self

    def _one(self, client: SlidestreamClient, path: Path) -> Uploaded:
        outcome = Uploaded(path)
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            outcome.attempts = attempt
            try:
                result = client.upload_file(path, verify_timeout_s=VERIFY_TIMEOUT_S)
                outcome.slide_id, outcome.verdict = result.slide_id, "accepted"
            except UploadRejectedError as error:
                outcome.slide_id, outcome.verdict = error.slide_id, "rejected"
            except SlidestreamError as error:
                # What a partner does when the CLI says the transfer failed: run it again (it
                # resumes the same upload from the client's state directory).
                outcome.slide_id = error.slide_id or outcome.slide_id
                outcome.error = f"{type(error).__name__}: {error}"
                time.sleep(RETRY_PAUSE_S)
                continue
            break
        outcome.finished_at = time.time()
        with self._lock:
            self.results.append(outcome)
        return outcome

    def acknowledged(self) -> int:
        """Uploads the service has answered so far."""
        with self._lock:
            return sum(1 for r in self.results if r.verdict)

    def wait(self, timeout_s: float) -> list[Uploaded]:
        deadline = time.monotonic() + timeout_s
        outcomes = [f.result(timeout=max(1.0, deadline - time.monotonic())) for f in self._futures]
        if self._pool is not None:
            self._pool.shutdown()
        return outcomes

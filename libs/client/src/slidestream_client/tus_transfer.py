"""One file's bytes to the tus server, recovering from what a long transfer meets.

An upload the server expired or terminated is started again, once; a creation or resume that
does not get through is retried with backoff. Chunk-level retries are :mod:`.tus`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from tusclient.client import TusClient

from slidestream_client.errors import (
    ApiConnectionError,
    UploadCancelledError,
    UploadFailedError,
)
from slidestream_client.state import StateStore, TusUrlStorage
from slidestream_client.tus import (
    MAX_ATTEMPTS,
    SlideUploader,
    UploadGoneError,
    backoff_s,
    tus_http_client,
)


def send_file(
    path: Path,
    *,
    tus_url: str,
    auth_header: str,
    store: StateStore,
    transport: httpx.BaseTransport | None,
    fingerprint: str,
    metadata: dict[str, str],
    chunk_size_bytes: int,
    on_progress: Callable[[int], None],
    cancel: threading.Event | None,
) -> SlideUploader:
    """Create or resume the upload of ``path`` and send every byte; the finished uploader.

    Raises :class:`UploadFailedError` when the server ends up holding fewer bytes than the file.
    """
    tus = TusClient(tus_url, headers={"Authorization": auth_header})
    storage = TusUrlStorage(store)
    size_bytes = path.stat().st_size

    def created(slide_id: str | None) -> None:
        # Persisted before the first PATCH, so a crash after it still knows the slide id.
        store.update_upload(fingerprint, slide_id=slide_id, path=str(path), size_bytes=size_bytes)

    with tus_http_client(transport=transport) as http:

        def new_uploader() -> SlideUploader:
            return SlideUploader(
                path,
                tus=tus,
                http=http,
                fingerprint=fingerprint,
                storage=storage,
                metadata=metadata,
                chunk_size_bytes=chunk_size_bytes,
                on_created=created,
                on_progress=on_progress,
                cancel=cancel,
            )

        uploader = _upload_recovering(new_uploader, storage, fingerprint, cancel)
        if uploader.offset != size_bytes:
            raise UploadFailedError(f"the server holds {uploader.offset} of {size_bytes} bytes")
        return uploader


def _upload_recovering(
    new_uploader: Callable[[], SlideUploader],
    storage: TusUrlStorage,
    fingerprint: str,
    cancel: threading.Event | None,
) -> SlideUploader:
    """Run a fresh uploader until one finishes: once more after the upload is gone, up to
    :data:`~.tus.MAX_ATTEMPTS` times while the server cannot be reached."""
    restarted = False
    failures = 0
    while True:
        try:
            uploader = new_uploader()
            uploader.upload()
        except UploadGoneError:
            # Expired or terminated on the server: start this file again, once.
            storage.remove_item(fingerprint)
            if restarted:
                raise
            restarted = True
            continue
        except ApiConnectionError:
            # The resume HEAD or the creation did not get through (tusd restarting, or
            # 423 while the request of a killed client still holds the upload's lock).
            failures += 1
            if failures >= MAX_ATTEMPTS:
                raise
            if (cancel or threading.Event()).wait(backoff_s(failures)):
                raise UploadCancelledError("upload interrupted") from None
            continue
        return uploader

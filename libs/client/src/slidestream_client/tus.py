"""The tus 1.0 byte path: tuspy's uploader, with streamed PATCH bodies, progress and clear errors.

tuspy drives the protocol (URL storage keyed by a fingerprint, resume from the server's offset,
the chunk loop, ``Upload-Metadata`` encoding). Three of its requests are replaced here:

- creation (``POST``): tuspy drops the response headers and error body, and we need the
  ``Slidestream-Slide-Id`` header and the server's ``{"reason", "message"}``;
- ``PATCH``: tuspy reads a whole chunk into memory and reports no progress; here the body is
  streamed from disk in small blocks with an exact ``Content-Length`` (memory stays at one block
  per upload whatever the chunk size), and failures are retried from the server's offset;
- ``HEAD``: with a timeout (tuspy's has none) and 404/410 told apart from other failures.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast
from urllib.parse import urljoin

import httpx
from tusclient.client import TusClient
from tusclient.uploader.uploader import Uploader

from slidestream_client.errors import (
    ApiConnectionError,
    UploadCancelledError,
    UploadFailedError,
    UploadRefusedError,
    error_from_response,
)
from slidestream_client.state import FixedFingerprint, TusUrlStorage

TUS_VERSION = "1.0.0"
BODY_BLOCK_BYTES = 1024 * 1024
"""Read and send granularity of a PATCH body; also the progress granularity."""
MAX_ATTEMPTS = 6
"""Tries per chunk before giving up (a rerun still resumes)."""
RETRY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)
SLIDE_ID_HEADER = "Slidestream-Slide-Id"

# tus 1.0 (Core Protocol, PATCH): 409 when Upload-Offset does not match the server's; 423 is what
# tusd answers while an earlier request (e.g. of a killed client) still holds the upload's lock;
# 460 is tus's checksum mismatch (Checksum extension).
_RETRYABLE_STATUSES = frozenset({408, 409, 423, 429, 460, 500, 502, 503, 504})
_GONE_STATUSES = frozenset({404, 410})


def backoff_s(attempt: int) -> float:
    """The pause before retry number ``attempt`` (1-based)."""
    return RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S)) - 1]


class UploadGoneError(UploadFailedError):
    """The stored upload URL no longer exists on the server (expired or terminated)."""


class _RetryableError(Exception):
    pass


def tus_http_client(
    timeout_s: float = 300.0, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """An HTTP client for the tus byte path: a long read timeout, since tusd answers a PATCH only
    after it has stored the chunk's parts in the object store."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=15.0), follow_redirects=False, transport=transport
    )


class SlideUploader(Uploader):
    """Uploads one file; ``upload()`` (from tuspy) creates or resumes, then sends every chunk."""

    def __init__(
        self,
        path: Path,
        *,
        tus: TusClient,
        http: httpx.Client,
        fingerprint: str,
        storage: TusUrlStorage,
        metadata: dict[str, str],
        chunk_size_bytes: int,
        on_created: Callable[[str | None], None] = lambda _slide_id: None,
        on_progress: Callable[[int], None] = lambda _offset: None,
        cancel: threading.Event | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        # Set before tuspy's constructor, which HEADs a stored URL through get_offset().
        self._http = http
        self._on_created = on_created
        self._on_progress = on_progress
        self._cancel = cancel or threading.Event()
        self._max_attempts = max_attempts
        self._path = path
        self._tus_url: str = str(tus.url)
        self._client_headers = dict(tus.headers)
        self._metadata = dict(metadata)
        self._size_bytes = path.stat().st_size
        self.slide_id: str | None = None
        self.bytes_sent = 0
        super().__init__(
            file_path=str(path),
            client=tus,
            chunk_size=chunk_size_bytes,
            metadata=metadata,
            store_url=True,
            url_storage=storage,
            fingerprinter=FixedFingerprint(fingerprint),
        )
        self.resumed_from_bytes: int = self.offset if self.url else 0
        self._on_progress(self.resumed_from_bytes)

    # -- tus requests ------------------------------------------------------------------------------
    def _tus_headers(self) -> dict[str, str]:
        return {**self._client_headers, "Tus-Resumable": TUS_VERSION}

    def _upload_url(self) -> str:
        url = cast("str | None", self.url)
        if not url:
            raise UploadFailedError("no upload URL yet")
        return url

    def encode_metadata(self) -> list[str]:
        """tus 1.0 Creation, ``Upload-Metadata``: ``key base64(value)`` pairs, comma-separated."""
        pairs = []
        for key, value in self._metadata.items():
            if not key or any(c.isspace() or c == "," for c in key):
                raise ValueError(f"invalid Upload-Metadata key {key!r}")
            pairs.append(f"{key} {base64.b64encode(value.encode('utf-8')).decode('ascii')}")
        return pairs

    def create_url(self) -> str:
        """tus 1.0 Creation: ``POST`` with ``Upload-Length`` and ``Upload-Metadata`` → 201 +
        ``Location``."""
        headers = self._tus_headers()
        headers["Upload-Length"] = str(self._size_bytes)
        headers["Upload-Metadata"] = ",".join(self.encode_metadata())
        try:
            response = self._http.post(self._tus_url, headers=headers)
        except httpx.TransportError as error:
            raise ApiConnectionError(f"cannot reach the tus server: {error}") from error
        if response.status_code != httpx.codes.CREATED:
            raise error_from_response(response, refused=UploadRefusedError)
        location = response.headers.get("Location")
        if not location:
            raise UploadFailedError("the tus server created an upload but sent no Location")
        self.slide_id = response.headers.get(SLIDE_ID_HEADER)
        self._on_created(self.slide_id)
        return urljoin(self._tus_url, str(location))

    def get_offset(self) -> int:
        """tus 1.0 Core, HEAD: the server's ``Upload-Offset`` of the upload."""
        try:
            response = self._http.head(self._upload_url(), headers=self._tus_headers())
        except httpx.TransportError as error:
            raise ApiConnectionError(f"cannot reach the tus server: {error}") from error
        if response.status_code in _GONE_STATUSES:
            raise UploadGoneError("the earlier upload no longer exists on the server")
        if response.status_code == httpx.codes.UNAUTHORIZED:
            raise error_from_response(response)
        if response.status_code in _RETRYABLE_STATUSES:
            raise ApiConnectionError(f"the tus server answered HEAD with {response.status_code}")
        if not response.is_success:
            raise UploadFailedError(f"the tus server answered HEAD with {response.status_code}")
        return _offset_header(response)

    def upload_chunk(self) -> None:
        """Send the next chunk; on a transient failure ask the server's offset and try again."""
        if not self.url:
            self.set_url(self.create_url())
            self.offset = 0
        for attempt in range(1, self._max_attempts + 1):
            try:
                self._patch()
                return
            except _RetryableError as error:
                if attempt == self._max_attempts:
                    raise UploadFailedError(
                        f"gave up after {attempt} attempts: {error}; rerun to resume"
                    ) from error
                if self._cancel.wait(backoff_s(attempt)):
                    raise UploadCancelledError("upload interrupted") from error
                try:
                    # tus 1.0 Core: after a failure, HEAD gives the offset to resume from.
                    self.offset = self.get_offset()
                except ApiConnectionError:
                    continue  # the next PATCH fails the same way and counts as an attempt
                self._on_progress(self.offset)

    def _patch(self) -> None:
        offset = int(self.offset)
        length = min(int(self.chunk_size), int(self.stop_at) - offset)
        headers = self._tus_headers()
        headers["Upload-Offset"] = str(offset)
        headers["Content-Type"] = "application/offset+octet-stream"
        # An explicit length: httpx then streams the generator without chunked encoding.
        headers["Content-Length"] = str(length)
        try:
            response = self._http.patch(
                self._upload_url(), content=self._body(offset, length), headers=headers
            )
        except httpx.TransportError as error:
            if self._cancel.is_set():
                raise UploadCancelledError("upload interrupted") from error
            raise _RetryableError(f"connection failed: {error}") from error
        status = response.status_code
        if status == httpx.codes.NO_CONTENT:
            self.offset = _offset_header(response)
            self._on_progress(self.offset)
            return
        if status == httpx.codes.UNAUTHORIZED:
            raise error_from_response(response)
        if status in _GONE_STATUSES:
            raise UploadGoneError("the upload expired or was terminated on the server")
        if status in _RETRYABLE_STATUSES:
            raise _RetryableError(f"the tus server answered PATCH with {status}")
        refusal = error_from_response(response)
        raise UploadFailedError(f"the tus server refused the chunk: {refusal.message}")

    def _body(self, offset: int, length: int) -> Iterator[bytes]:
        with Path(self._path).open("rb") as handle:
            handle.seek(offset)
            remaining = length
            position = offset
            while remaining > 0:
                if self._cancel.is_set():
                    raise UploadCancelledError("upload interrupted")
                block = handle.read(min(BODY_BLOCK_BYTES, remaining))
                if not block:
                    raise UploadFailedError(f"{self._path} shrank while it was being uploaded")
                remaining -= len(block)
                position += len(block)
                self.bytes_sent += len(block)
                yield block
                self._on_progress(position)


def _offset_header(response: httpx.Response) -> int:
    raw = response.headers.get("Upload-Offset", "")
    if not raw.isdigit():
        raise UploadFailedError("the tus server sent no valid Upload-Offset")
    return int(raw)

"""The slidestream SDK: upload slides (resumable, verified), follow them through the pipeline.

    from slidestream_client.sdk import SlidestreamClient
    from slidestream_contracts.states import Stage

    with SlidestreamClient("https://upload.example.org", token) as client:
        result = client.upload_file("slide.svs", meta={"study": "S1"})
        client.wait(result.slide_id, Stage.QC, timeout_s=3600)

Every method raises a :class:`~slidestream_client.errors.SlidestreamError` subclass on failure.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import httpx

from slidestream_client import __version__
from slidestream_client.errors import (
    ApiConnectionError,
    ApiError,
    ManifestRefusedError,
    NotFoundError,
    SlidestreamError,
    UploadFailedError,
    UploadRefusedError,
    UploadRejectedError,
    error_from_response,
    retry_after_s,
)
from slidestream_client.files import cached_sha256, meta_json
from slidestream_client.models import (
    BatchCreated,
    BatchReport,
    ServerInfo,
    SlideFix,
    SlideStatus,
    UploadResult,
    UploadState,
    UploadStatus,
    WaitResult,
)
from slidestream_client.progress import NoProgress, UploadProgress
from slidestream_client.state import (
    StateStore,
    default_state_dir,
    manifest_key,
    upload_fingerprint,
)
from slidestream_client.tus import SlideUploader
from slidestream_client.tus_transfer import send_file
from slidestream_client.upload_verdict import MAX_POLL_INTERVAL_S, poll_upload_verdict
from slidestream_contracts.states import Stage, WaitOutcome

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE_BYTES = 100 * MIB
"""Bytes per tus PATCH. A multiple of tusd's S3 part size (50 MiB by default): a chunk that ends
inside a part makes tusd store the remainder as a separate object and fetch it back on the next
PATCH. The body is streamed, so the chunk size costs no client memory."""
DEFAULT_API_TIMEOUT_S = 30.0
DEFAULT_VERIFY_TIMEOUT_S = 900.0
"""How long to wait, once every byte is sent, for the server to verify the sha256 and publish."""
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
RATE_LIMIT_RETRIES = 5
"""A 429 is retried this often, after its ``Retry-After`` (at most ``MAX_RETRY_AFTER_S``)."""
MAX_RETRY_AFTER_S = 60


def _transient(error: SlidestreamError) -> bool:
    if isinstance(error, ApiError):
        return error.status_code in _TRANSIENT_STATUSES
    return isinstance(error, ApiConnectionError)


class SlidestreamClient:
    """A tenant's connection to the upload API (thread-safe: uploads may run in parallel)."""

    def __init__(
        self,
        api: str,
        token: str,
        *,
        state_dir: Path | None = None,
        timeout_s: float = DEFAULT_API_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network for the API and tus requests (tests)."""
        if not token:
            raise ValueError("a token is required")
        self.api = api.rstrip("/")
        self._auth_header = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.api,
            headers={
                "Authorization": self._auth_header,
                "User-Agent": f"slidestream-client/{__version__}",
            },
            timeout=timeout_s,
            transport=transport,
        )
        self._transport = transport
        self._state_dir = state_dir or default_state_dir()
        self._store: StateStore | None = None
        self._info: ServerInfo | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # Never the token.
        return f"SlidestreamClient(api={self.api!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlidestreamClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def store(self) -> StateStore:
        with self._lock:
            if self._store is None:
                self._store = StateStore(self._state_dir)
            return self._store

    # -- REST ------------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        expect: int = httpx.codes.OK,
        refused: type[ApiError] = ApiError,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                response = self._http.request(method, path, content=content, headers=headers)
            except httpx.TransportError as error:
                raise ApiConnectionError(f"cannot reach {self.api}: {error}") from error
            if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
                break
            time.sleep(min(retry_after_s(response), MAX_RETRY_AFTER_S))
        if response.status_code != expect:
            raise error_from_response(response, refused=refused)
        return response

    def info(self) -> ServerInfo:
        """The tenant the token belongs to, the tus endpoint and the size limit (cached)."""
        if self._info is None:
            info = ServerInfo.model_validate_json(self._request("GET", "/v1/info").content)
            with self._lock:
                self._info = info
        return self._info

    def upload_status(self, slide_id: str) -> UploadStatus:
        response = self._request("GET", f"/v1/uploads/{quote(slide_id, safe='')}")
        return UploadStatus.model_validate_json(response.content)

    def slide(self, slide_id: str) -> SlideStatus:
        response = self._request("GET", f"/v1/slides/{quote(slide_id, safe='')}")
        return SlideStatus.model_validate_json(response.content)

    def fix(self, slide_id: str, facts: dict[str, str]) -> SlideFix:
        """Supply what a failed slide lacked; the step that failed runs again, once."""
        body, json_type = json.dumps(facts).encode(), {"Content-Type": "application/json"}
        path = f"/v1/slides/{quote(slide_id, safe='')}/fix"
        response = self._request("POST", path, expect=202, content=body, headers=json_type)
        return SlideFix.model_validate_json(response.content)

    def create_batch(self, manifest_path: Path | str) -> BatchCreated:
        """Register a manifest (CSV, or JSON for a ``.json`` file); uploads then name its id."""
        path = Path(manifest_path)
        content_type = "application/json" if path.suffix.lower() == ".json" else "text/csv"
        response = self._request(
            "POST",
            "/v1/batches",
            expect=httpx.codes.CREATED,
            refused=ManifestRefusedError,
            content=path.read_bytes(),
            headers={"Content-Type": content_type},
        )
        return BatchCreated.model_validate_json(response.content)

    def ensure_batch(self, manifest_path: Path | str) -> str:
        """The batch of this manifest: the one registered by an earlier run (so a rerun after a
        crash resumes its uploads), else a new one."""
        path = Path(manifest_path)
        key = manifest_key(
            api=self.api, tenant=self.info().tenant, manifest_bytes=path.read_bytes()
        )
        known = self.store.batch_id(key)
        if known is not None:
            try:
                self.batch(known)
            except NotFoundError:
                self.store.forget_batch(key)
            else:
                return known
        created = self.create_batch(path)
        self.store.remember_batch(key, created.batch_id)
        return created.batch_id

    def batch(self, batch_id: str) -> BatchReport:
        """How the uploads of a batch compare with its manifest."""
        response = self._request("GET", f"/v1/batches/{quote(batch_id, safe='')}")
        return BatchReport.model_validate_json(response.content)

    # -- waiting ---------------------------------------------------------------------------------
    def wait(
        self,
        slide_id: str,
        stage: Stage,
        *,
        timeout_s: float,
        poll_interval_s: float = 1.0,
        on_status: Callable[[SlideStatus], None] = lambda _status: None,
    ) -> WaitResult:
        """Poll until the slide has completed ``stage`` (REACHED), never will (STOPPED), or
        ``timeout_s`` passed (PENDING, with the last status seen)."""
        deadline = time.monotonic() + timeout_s
        interval_s = poll_interval_s
        last: SlideStatus | None = None
        while True:
            try:
                last = self.slide(slide_id)
            except (ApiConnectionError, ApiError) as error:
                # The API restarting is no reason to give up a long wait; a 401/404 is.
                if not _transient(error) or (last is None and time.monotonic() >= deadline):
                    raise
            if last is not None:
                on_status(last)
                outcome = last.outcome(stage)
                if outcome is not WaitOutcome.PENDING:
                    return WaitResult(status=last, outcome=outcome)
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0 and last is not None:
                return WaitResult(status=last, outcome=WaitOutcome.PENDING)
            time.sleep(max(0.0, min(interval_s, remaining_s)))
            interval_s = min(interval_s * 1.5, MAX_POLL_INTERVAL_S)

    # -- uploads ---------------------------------------------------------------------------------
    def sha256(self, path: Path | str, on_progress: Callable[[int], None] | None = None) -> str:
        """The file's sha256 (remembered in the state directory by path, size and mtime)."""
        return cached_sha256(Path(path), self.store, on_progress or (lambda _n: None))

    def upload_file(
        self,
        path: Path | str,
        *,
        batch_id: str | None = None,
        meta: dict[str, str] | None = None,
        sha256: str | None = None,
        chunk_size_bytes: int = DEFAULT_CHUNK_SIZE_BYTES,
        progress: UploadProgress | None = None,
        cancel: threading.Event | None = None,
        verify_timeout_s: float = DEFAULT_VERIFY_TIMEOUT_S,
    ) -> UploadResult:
        """Upload one file with tus, resuming an earlier attempt of the same file, then wait for
        the server to verify it (``sha256`` defaults to the file's; pass another to test).

        Raises :class:`UploadRefusedError` (refused at creation), :class:`UploadRejectedError`
        (refused after verification), :class:`UploadFailedError` (transfer failed; rerun to
        resume), :class:`AuthenticationError`, :class:`ApiConnectionError`. The exception's
        ``slide_id`` attribute is set when the server had assigned one.
        """
        file_path = Path(path).expanduser().resolve()
        listener: UploadProgress = progress or NoProgress()
        fingerprint, base, metadata = self._plan_upload(file_path, batch_id, meta, sha256, listener)
        slide_id: str | None = None
        try:
            record = self.store.upload(fingerprint)
            if record is not None and record.completed and record.slide_id:
                slide_id = record.slide_id
                resumed = self._resume_completed(
                    slide_id, fingerprint, base, listener, verify_timeout_s
                )
                if resumed is not None:
                    return resumed
            uploader = self._send(
                file_path, fingerprint, metadata, chunk_size_bytes, listener, cancel
            )
            record = self.store.update_upload(fingerprint, completed=True)
            slide_id = uploader.slide_id or record.slide_id
            sent = replace(
                base,
                slide_id=slide_id,
                bytes_sent=uploader.bytes_sent,
                resumed_from_bytes=uploader.resumed_from_bytes,
            )
            if slide_id is None:
                # A tus server without our hooks: nothing to verify against.
                return sent
            return self._verified(sent, listener, verify_timeout_s)
        except SlidestreamError as error:
            error.slide_id = (
                getattr(error, "slide_id", None)
                or slide_id
                or (rec.slide_id if (rec := self.store.upload(fingerprint)) else None)
            )
            raise

    def _plan_upload(
        self,
        file_path: Path,
        batch_id: str | None,
        meta: dict[str, str] | None,
        sha256: str | None,
        listener: UploadProgress,
    ) -> tuple[str, UploadResult, dict[str, str]]:
        """The upload's fingerprint, its result before any byte is sent, and its tus metadata.

        Refuses a file over the server's size limit before hashing it.
        """
        size_bytes = file_path.stat().st_size
        info = self.info()
        if size_bytes > info.max_upload_bytes:
            raise UploadRefusedError(
                413,
                "too-large",
                f"{size_bytes} bytes exceeds the maximum of {info.max_upload_bytes} bytes",
            )
        digest = sha256 or cached_sha256(file_path, self.store, listener.hashing)
        meta_value = meta_json(meta or {})
        fingerprint = upload_fingerprint(
            tus_url=info.tus_url,
            tenant=info.tenant,
            path=file_path,
            size_bytes=size_bytes,
            sha256=digest,
            batch_id=batch_id,
            meta_json=meta_value,
        )
        base = UploadResult(
            path=file_path,
            filename=file_path.name,
            size_bytes=size_bytes,
            status="uploaded",
            sha256=digest,
            batch_id=batch_id,
        )
        metadata = {"filename": file_path.name, "sha256": digest}
        if batch_id:
            metadata["batch_id"] = batch_id
        if meta_value:
            metadata["meta"] = meta_value
        return fingerprint, base, metadata

    def _resume_completed(
        self,
        slide_id: str,
        fingerprint: str,
        base: UploadResult,
        listener: UploadProgress,
        verify_timeout_s: float,
    ) -> UploadResult | None:
        """The result of an upload an earlier run completed; ``None`` (and forgotten) when the
        server no longer has it, so the file is sent again."""
        previous = self._previous_upload(slide_id)
        if previous is None:
            self.store.forget_upload(fingerprint)
            return None
        listener.uploading(base.size_bytes)
        return self._verified(
            replace(base, slide_id=slide_id, resumed_from_bytes=base.size_bytes),
            listener,
            verify_timeout_s,
        )

    def _previous_upload(self, slide_id: str) -> UploadStatus | None:
        """The server's view of an upload an earlier run completed (``None``: start over)."""
        try:
            status = self.upload_status(slide_id)
        except NotFoundError:
            return None
        if status.state in {UploadState.EXPIRED, UploadState.TERMINATED}:
            return None
        return status

    def _send(
        self,
        path: Path,
        fingerprint: str,
        metadata: dict[str, str],
        chunk_size_bytes: int,
        listener: UploadProgress,
        cancel: threading.Event | None,
    ) -> SlideUploader:
        return send_file(
            path,
            tus_url=self.info().tus_url,
            auth_header=self._auth_header,
            store=self.store,
            transport=self._transport,
            fingerprint=fingerprint,
            metadata=metadata,
            chunk_size_bytes=chunk_size_bytes,
            on_progress=listener.uploading,
            cancel=cancel,
        )

    def _verified(
        self, sent: UploadResult, listener: UploadProgress, verify_timeout_s: float
    ) -> UploadResult:
        """Wait for the server to verify the upload's sha256 and publish it."""
        slide_id = sent.slide_id
        assert slide_id is not None
        listener.verifying()
        status = poll_upload_verdict(self.upload_status, slide_id, verify_timeout_s)
        if status is not None and status.state is UploadState.REJECTED:
            raise UploadRejectedError(slide_id, status.reason, status.detail)
        if status is not None and status.state in {UploadState.EXPIRED, UploadState.TERMINATED}:
            raise UploadFailedError(f"the upload was {status.state.value} on the server")
        return replace(
            sent,
            upload_state=status.state if status else None,
            reason=None if status is not None and status.state.is_final else "verification-pending",
        )

"""An in-memory stand-in for the upload API and tusd, served through ``httpx.MockTransport``.

It follows the contract the client is written against: ``/v1/info``, tus 1.0 creation, HEAD and
PATCH under ``/files/``, ``/v1/uploads/{id}``, ``/v1/slides/{id}`` and ``/v1/batches``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from slidestream_client.sdk import SlidestreamClient

API = "http://api.test"
TUS_URL = "http://tus.test/files/"
TOKEN = "s3cr3t-token-value"


class Killed(Exception):  # noqa: N818 - a simulated kill -9, not an error the client handles
    """Raised mid-PATCH to simulate the client process dying."""


@dataclass
class FakeUpload:
    slide_id: str
    length: int
    metadata: dict[str, str]
    data: bytearray = field(default_factory=bytearray)
    state: str = "receiving"


@dataclass
class FakeServer:
    token: str = TOKEN
    max_upload_bytes: int = 1 << 40
    uploads: dict[str, FakeUpload] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    creation_headers: list[dict[str, str]] = field(default_factory=list)
    refuse_creation: tuple[int, str, str] | None = None
    kill_after_bytes: int | None = None
    """Die (raise :class:`Killed`) once this many bytes arrived in total."""
    patch_failures: list[int] = field(default_factory=list)
    """Statuses to answer the next PATCHes with (consumed one by one)."""
    head_failures: list[int] = field(default_factory=list)
    """Statuses to answer the next HEADs with (e.g. 423 while a killed request holds the lock)."""
    slide_states: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    """Scripted GET /v1/slides answers per slide (the last one repeats)."""
    batches: dict[str, bytes] = field(default_factory=dict)
    received_total: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, state_dir: Path, token: str | None = None) -> SlidestreamClient:
        return SlidestreamClient(
            API, token or self.token, state_dir=state_dir, transport=self.transport()
        )

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"reason": "unauthorized", "message": "unknown token"})
        path = request.url.path
        if request.url.host == "tus.test":
            return self._tus(request, path)
        if path == "/v1/info":
            return httpx.Response(
                200,
                json={
                    "tenant": "acme",
                    "tus_url": TUS_URL,
                    "max_upload_bytes": self.max_upload_bytes,
                },
            )
        if path.startswith("/v1/uploads/"):
            upload = self._by_slide(path.rsplit("/", 1)[-1])
            if upload is None:
                return httpx.Response(404, json={"reason": "not-found", "message": "no upload"})
            return httpx.Response(200, json=self._upload_json(upload))
        if path.startswith("/v1/slides/"):
            slide_id = path.rsplit("/", 1)[-1]
            script = self.slide_states.get(slide_id)
            if not script:
                return httpx.Response(404, json={"reason": "not-found", "message": "no slide"})
            answer = script.pop(0) if len(script) > 1 else script[0]
            return httpx.Response(200, json={"slide_id": slide_id, **answer})
        if path == "/v1/batches" and request.method == "POST":
            body = request.read()
            if not body.strip():
                return httpx.Response(
                    400, json={"reason": "bad-manifest", "message": "row 1: empty"}
                )
            batch_id = str(uuid.uuid4())
            self.batches[batch_id] = body
            return httpx.Response(201, json={"batch_id": batch_id, "rows": body.count(b"\n")})
        if path.startswith("/v1/batches/"):
            batch_id = path.rsplit("/", 1)[-1]
            if batch_id not in self.batches:
                return httpx.Response(404, json={"reason": "not-found", "message": "no batch"})
            return httpx.Response(
                200,
                json={"batch_id": batch_id, "rows": 1, "matched": ["a.svs"], "complete": True},
            )
        return httpx.Response(404)

    def _by_slide(self, slide_id: str) -> FakeUpload | None:
        return next((u for u in self.uploads.values() if u.slide_id == slide_id), None)

    @staticmethod
    def _upload_json(upload: FakeUpload) -> dict[str, object]:
        reason = "checksum-mismatch" if upload.state == "rejected" else None
        return {
            "slide_id": upload.slide_id,
            "filename": upload.metadata.get("filename"),
            "state": upload.state,
            "received_bytes": len(upload.data),
            "size_bytes": upload.length,
            "reason": reason,
            "detail": "sha256 differs from the declared one" if reason else None,
            "created_at": "2026-01-01T00:00:00Z",
            "finished_at": None,
        }

    # -- tus 1.0 -----------------------------------------------------------------------------
    def _tus(self, request: httpx.Request, path: str) -> httpx.Response:
        assert request.headers.get("Tus-Resumable") == "1.0.0"
        if request.method == "POST" and path == "/files/":
            self.creation_headers.append(dict(request.headers))
            if self.refuse_creation is not None:
                status, reason, message = self.refuse_creation
                return httpx.Response(status, json={"reason": reason, "message": message})
            metadata = {}
            for pair in request.headers.get("Upload-Metadata", "").split(","):
                if pair:
                    key, _, value = pair.partition(" ")
                    metadata[key] = base64.b64decode(value).decode("utf-8")
            slide_id = str(uuid.uuid4())
            upload_path = f"/files/acme/{slide_id}/original+mp{len(self.uploads)}"
            self.uploads[upload_path] = FakeUpload(
                slide_id, int(request.headers["Upload-Length"]), metadata
            )
            return httpx.Response(
                201, headers={"Location": upload_path, "Slidestream-Slide-Id": slide_id}
            )
        upload = self.uploads.get(path)
        if upload is None or upload.state in {"expired", "terminated"}:
            return httpx.Response(404)
        if request.method == "HEAD":
            if self.head_failures:
                return httpx.Response(self.head_failures.pop(0))
            return httpx.Response(
                200,
                headers={
                    "Upload-Offset": str(len(upload.data)),
                    "Upload-Length": str(upload.length),
                },
            )
        if request.method == "PATCH":
            if self.patch_failures:
                request.read()
                return httpx.Response(self.patch_failures.pop(0))
            if int(request.headers["Upload-Offset"]) != len(upload.data):
                return httpx.Response(409)
            for piece in _pieces(request):
                for byte_offset in range(0, len(piece), 65536):
                    part = piece[byte_offset : byte_offset + 65536]
                    if (
                        self.kill_after_bytes is not None
                        and self.received_total + len(part) > self.kill_after_bytes
                    ):
                        self.kill_after_bytes = None
                        raise Killed
                    upload.data += part
                    self.received_total += len(part)
            if len(upload.data) == upload.length:
                digest = hashlib.sha256(upload.data).hexdigest()
                upload.state = "published" if digest == upload.metadata["sha256"] else "rejected"
            return httpx.Response(204, headers={"Upload-Offset": str(len(upload.data))})
        return httpx.Response(405)


def _pieces(request: httpx.Request) -> Iterator[bytes]:
    stream = request.stream
    assert isinstance(stream, httpx.SyncByteStream)
    yield from stream


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"

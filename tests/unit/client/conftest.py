"""In-memory stand-ins for the upload API and tusd, and for the models API, served through
``httpx.MockTransport``.

They follow the contracts the client is written against: ``/v1/info``, tus 1.0 creation, HEAD and
PATCH under ``/files/``, ``/v1/uploads/{id}``, ``/v1/slides/{id}`` and ``/v1/batches``; and
``/v1/models``, ``/v1/routes`` of the inference service (issue 14); and the search API
(:mod:`tests.support.search_api_fake`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import httpx
import pytest

from slidestream_client.sdk import SlidestreamClient
from slidestream_modelrepo import (
    ModelPackageError,
    package_directory,
    package_torchscript,
    read_card,
    unpack_upload,
)
from tests.support.search_api_fake import FakeSearchApi

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
    rate_limited: list[int] = field(default_factory=list)
    """``Retry-After`` seconds to answer the next API (not tus) requests with 429, one by one."""
    received_total: int = 0
    fixes: dict[str, dict[str, object]] = field(default_factory=dict)
    """Slide id → the facts of its fix (POST /v1/slides/{id}/fix; one per slide)."""

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, state_dir: Path, token: str | None = None) -> SlidestreamClient:
        return SlidestreamClient(
            API, token or self.token, state_dir=state_dir, transport=self.transport()
        )

    def _fix(self, slide_id: str, facts: dict[str, object]) -> httpx.Response:
        if slide_id in self.fixes:
            return httpx.Response(409, json={"reason": "already-fixed", "message": "fixed once"})
        self.fixes[slide_id] = facts
        declared = {k: float(str(v)) if k == "mpp_um" else v for k, v in facts.items()}
        answer = {"slide_id": slide_id, "fix_id": str(uuid.uuid4()), "declared": declared}
        return httpx.Response(202, json={**answer, "step": "convert", "reason": "no-spacing"})

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"reason": "unauthorized", "message": "unknown token"})
        path = request.url.path
        if request.url.host == "tus.test":
            return self._tus(request, path)
        if self.rate_limited:
            retry_after = self.rate_limited.pop(0)
            return httpx.Response(
                429,
                headers={"Retry-After": str(retry_after)},
                json={"reason": "rate-limited", "message": "too many requests from this token"},
            )
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
        if path.startswith("/v1/slides/") and path.endswith("/fix"):
            return self._fix(path.split("/")[3], json.loads(request.read()))
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


# -- the models API (the inference service) -----------------------------------------------------
MODELS_API = "http://inference.test"
MAX_MODEL_BYTES = 1 << 24
WRITE_SCOPE = "models:write"


@dataclass
class FakeModelsApi:
    """The models API's contract in memory: pushes are unpacked and checked with the library,
    as the service does; load, routes and backfill answer from scripted state."""

    token: str = TOKEN
    scopes: set[str] = field(default_factory=lambda: {"models:read", WRITE_SCOPE})
    versions: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    """Pushed cards by model name and version."""
    pushed_files: dict[str, list[str]] = field(default_factory=dict)
    canary_failure: str | None = None
    triton_down: bool = False
    routes: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)
    backfill_script: list[dict[str, int]] = field(default_factory=list)
    """GET progress answers in turn (the last one repeats)."""
    backfill_requests: list[dict[str, object]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "unknown token")
        if request.method != "GET" and WRITE_SCOPE not in self.scopes:
            return _error(403, "forbidden", f"the token lacks the {WRITE_SCOPE} scope")
        parts = request.url.path.strip("/").split("/")[1:]  # without "v1"
        if parts[0] == "routes":
            return self._routes(request, parts)
        if parts == ["models"]:
            return httpx.Response(200, json={"models": self._listing()})
        name, rest = parts[1], parts[2:]
        if rest[:1] == ["versions"]:
            return self._push(request, name, rest[1])
        if rest == ["load"]:
            return self._load(name)
        if rest == ["unload"]:
            return httpx.Response(200, json={"name": name, "state": "UNAVAILABLE"})
        if rest[:1] == ["backfill"]:
            return self._backfill(request, name, rest[1:])
        if not rest and name in self.versions:
            return httpx.Response(200, json=self._detail(name))
        return _error(404, "not-found", f"no model {name}")

    def _push(self, request: httpx.Request, name: str, version: str) -> httpx.Response:
        form = _multipart(request)
        try:
            card = read_card(form["card"], name=name, version=version)
            files = unpack_upload(form["archive"], max_bytes=MAX_MODEL_BYTES)
            if version in self.versions.get(name, {}):
                return _error(409, "version-exists", f"{name} version {version} exists")
            package = (
                package_torchscript(files["model.pt"], card, gpus=0)
                if set(files) == {"model.pt"}
                else package_directory(files, card)
            )
        except ModelPackageError as error:
            problems = [{"field": p.field, "message": p.message} for p in error.problems]
            return httpx.Response(
                422,
                json={"error": "invalid-model", "message": "invalid", "problems": problems},
            )
        self.versions.setdefault(name, {})[version] = card.model_dump(mode="json")
        self.pushed_files[f"{name}/{version}"] = list(package.files)
        body = {"name": name, "version": version, "files": list(package.files)}
        return httpx.Response(201, json=body)

    def _load(self, name: str) -> httpx.Response:
        if self.triton_down:
            return _error(503, "triton-unavailable", "Triton does not answer")
        if self.canary_failure is not None:
            return _error(422, "canary-failed", self.canary_failure)
        canary = {"seconds": 0.25, "outputs": {"probabilities": [1, 3]}}
        return httpx.Response(200, json={"name": name, "state": "READY", "canary": canary})

    def _listing(self) -> list[dict[str, object]]:
        return [
            {
                "name": name,
                "versions": [
                    {"version": v, "state": "READY", "card": card} for v, card in versions.items()
                ],
            }
            for name, versions in self.versions.items()
        ]

    def _detail(self, name: str) -> dict[str, object]:
        return {
            "name": name,
            "versions": [
                {"version": v, "state": "READY", "reason": None, "device": "cpu", "card": {}}
                for v in self.versions[name]
            ],
            "statistics": [
                {
                    "version": v,
                    "inference_count": 120,
                    "execution_count": 8,
                    "queue_ms_mean": 1.5,
                    "compute_ms_mean": 42.25,
                }
                for v in self.versions[name]
            ],
            "loaded_at": "2026-01-01T12:00:00Z",
        }

    def _routes(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"routes": list(self.routes.values())})
        name = parts[1]
        if request.method == "PUT":
            body = json.loads(request.content)
            self.routes[(name, body["tenant"])] = {"name": name, **body}
            return httpx.Response(200, json=self.routes[(name, body["tenant"])])
        tenant = request.url.params["tenant"]
        if self.routes.pop((name, tenant), None) is None:
            return _error(404, "not-found", "no such route")
        return httpx.Response(204)

    def _backfill(self, request: httpx.Request, name: str, rest: list[str]) -> httpx.Response:
        if not rest:
            self.backfill_requests.append(json.loads(request.content))
            requested = self.backfill_script[-1]["requested"] if self.backfill_script else 0
            return httpx.Response(202, json={"backfill_id": "bf-1", "requested": requested})
        answer = self.backfill_script.pop(0) if len(self.backfill_script) > 1 else None
        return httpx.Response(200, json=answer or self.backfill_script[0])


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "message": message, "problems": []})


def _multipart(request: httpx.Request) -> dict[str, bytes]:
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + request.read())
    return {
        str(part.get_param("name", header="content-disposition")): part.get_payload(decode=True)
        for part in message.iter_parts()
    }


@pytest.fixture
def models_api() -> FakeModelsApi:
    return FakeModelsApi()


CARD_YAML = """\
name: tissue
version: 1
input: {tile_size_px: 32, mpp_um: 0.5}
outputs:
  - name: probabilities
    kind: class_probabilities
    width: 3
    labels: [tumour, stroma, fat]
max_batch_size: 8
preferred_batch_sizes: [4, 8]
"""


def torchscript_bytes() -> bytes:
    """``torch.jit.save`` writes a zip archive; its content does not matter to the client."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tissue/data.pkl", b"\x80\x02.")
    return buffer.getvalue()


@pytest.fixture
def torchscript_model(tmp_path: Path) -> Path:
    """``model.pt`` with ``card.yaml`` beside it."""
    folder = tmp_path / "torchscript"
    folder.mkdir()
    (folder / "card.yaml").write_text(CARD_YAML)
    (folder / "model.pt").write_bytes(torchscript_bytes())
    return folder / "model.pt"


@pytest.fixture
def triton_directory(tmp_path: Path) -> Path:
    """A Triton model directory (ONNX backend) holding its card."""
    folder = tmp_path / "tissue"
    (folder / "1").mkdir(parents=True)
    (folder / "card.yaml").write_text(CARD_YAML)
    (folder / "config.pbtxt").write_text(
        'platform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
        'input [{ name: "INPUT", data_type: TYPE_FP32, dims: [3, 32, 32] }]\n'
        'output [{ name: "probabilities", data_type: TYPE_FP32, dims: [3] }]\n'
    )
    (folder / "1" / "model.onnx").write_bytes(b"onnx bytes")
    (folder / ".DS_Store").write_bytes(b"junk")
    return folder


# -- the search API (the catalog service) -------------------------------------------------------
@pytest.fixture
def search_api() -> FakeSearchApi:
    return FakeSearchApi()

"""What the client remembers between runs, so a killed upload resumes instead of restarting.

Layout of the state directory (one small JSON file per entry, written atomically with a rename, so
a ``kill -9`` at any moment leaves either the old or the new file, never half of one, and parallel
uploads never write the same file):

- ``hashes/<key>.json``: the sha256 of a file, keyed by its absolute path, size and mtime;
- ``uploads/<fingerprint>.json``: the tus upload URL and slide id of one file's upload;
- ``batches/<key>.json``: the batch id a manifest was registered under.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError
from tusclient.fingerprint.interface import Fingerprint
from tusclient.storage.interface import Storage

STATE_DIR_MODE = 0o700
"""Upload URLs are capabilities of the tenant's uploads (with its token): keep them private."""


def default_state_dir() -> Path:
    return Path.home() / ".cache" / "slidestream" / "uploads"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def upload_fingerprint(
    *,
    tus_url: str,
    tenant: str,
    path: Path,
    size_bytes: int,
    sha256: str,
    batch_id: str | None,
    meta_json: str | None,
) -> str:
    """The key of one upload: the same file, content and metadata to the same tenant resumes.

    A changed file (other content), another tenant or server, another batch or other metadata is
    another upload, since the metadata was fixed when the upload was created (tus 1.0, Creation).
    """
    return _digest(
        "upload-v1",
        tus_url,
        tenant,
        str(path.resolve()),
        str(size_bytes),
        sha256,
        batch_id or "",
        meta_json or "",
    )


def manifest_key(*, api: str, tenant: str, manifest_bytes: bytes) -> str:
    """The key under which a manifest's batch id is remembered (a rerun reuses the batch)."""
    return _digest("batch-v1", api, tenant, hashlib.sha256(manifest_bytes).hexdigest())


class UploadRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str | None = None
    slide_id: str | None = None
    path: str | None = None
    size_bytes: int | None = None
    completed: bool = False
    """Every byte was accepted by the server (its offset reached the length)."""


class StateStore:
    """The state directory; safe to use from several threads for different files."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()
        for sub in ("hashes", "uploads", "batches"):
            (self.root / sub).mkdir(parents=True, exist_ok=True, mode=STATE_DIR_MODE)

    # -- files ---------------------------------------------------------------------------------
    def _read(self, kind: str, key: str) -> dict[str, object] | None:
        try:
            data = json.loads((self.root / kind / f"{key}.json").read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, kind: str, key: str, data: dict[str, object]) -> None:
        directory = self.root / kind
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{key}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
                handle.flush()
                # The rename below must never expose an empty file after a power cut.
                os.fsync(handle.fileno())
            tmp.replace(directory / f"{key}.json")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _remove(self, kind: str, key: str) -> None:
        (self.root / kind / f"{key}.json").unlink(missing_ok=True)

    # -- sha256 cache --------------------------------------------------------------------------
    @staticmethod
    def _hash_key(path: Path, size_bytes: int, mtime_ns: int) -> str:
        return _digest("sha256-v1", str(path.resolve()), str(size_bytes), str(mtime_ns))

    def cached_sha256(self, path: Path, size_bytes: int, mtime_ns: int) -> str | None:
        data = self._read("hashes", self._hash_key(path, size_bytes, mtime_ns))
        value = data.get("sha256") if data else None
        return value if isinstance(value, str) else None

    def remember_sha256(self, path: Path, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        self._write("hashes", self._hash_key(path, size_bytes, mtime_ns), {"sha256": sha256})

    # -- uploads -------------------------------------------------------------------------------
    def upload(self, fingerprint: str) -> UploadRecord | None:
        data = self._read("uploads", fingerprint)
        if data is None:
            return None
        try:
            return UploadRecord.model_validate(data)
        except ValidationError:
            return None

    def update_upload(self, fingerprint: str, **fields: object) -> UploadRecord:
        """Merge ``fields`` into the record (created if missing) and persist it."""
        current = self.upload(fingerprint) or UploadRecord()
        record = UploadRecord.model_validate({**current.model_dump(), **fields})
        self._write("uploads", fingerprint, record.model_dump())
        return record

    def forget_upload(self, fingerprint: str) -> None:
        self._remove("uploads", fingerprint)

    # -- batches -------------------------------------------------------------------------------
    def batch_id(self, key: str) -> str | None:
        data = self._read("batches", key)
        value = data.get("batch_id") if data else None
        return value if isinstance(value, str) else None

    def remember_batch(self, key: str, batch_id: str) -> None:
        self._write("batches", key, {"batch_id": batch_id})

    def forget_batch(self, key: str) -> None:
        self._remove("batches", key)


class TusUrlStorage(Storage):
    """tuspy's URL storage backed by the state directory (tuspy's own is a TinyDB file, which
    is not safe for parallel uploads)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def get_item(self, key: str) -> str | None:
        record = self._store.upload(key)
        # A completed upload is never PATCHed again; the client checks its server state instead.
        if record is None or record.completed:
            return None
        return record.url

    def set_item(self, key: str, value: str) -> None:
        self._store.update_upload(key, url=value)

    def remove_item(self, key: str) -> None:
        self._store.forget_upload(key)


class FixedFingerprint(Fingerprint):
    """tuspy fingerprints a file by its first 64 KiB; ours also covers the whole content (the
    sha256), the tenant, the batch and the metadata, so it is computed beforehand."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint

    def get_fingerprint(self, fs: object) -> str:
        return self._fingerprint

"""The state directory: fingerprints, the sha256 cache, resumable upload records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slidestream_client import files
from slidestream_client.files import cached_sha256, sha256_file
from slidestream_client.state import (
    StateStore,
    TusUrlStorage,
    manifest_key,
    upload_fingerprint,
)

BASE = {
    "tus_url": "http://tus/files/",
    "tenant": "acme",
    "path": Path("/data/a.svs"),
    "size_bytes": 10,
    "sha256": "ab" * 32,
    "batch_id": None,
    "meta_json": None,
}


def test_fingerprint_is_stable() -> None:
    assert upload_fingerprint(**BASE) == upload_fingerprint(**BASE)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("tus_url", "http://elsewhere/files/"),
        ("tenant", "other"),
        ("path", Path("/data/b.svs")),
        ("size_bytes", 11),
        ("sha256", "cd" * 32),
        ("batch_id", "batch-1"),
        ("meta_json", '{"k":"v"}'),
    ],
)
def test_fingerprint_changes_with_every_input(field: str, other: object) -> None:
    changed = {**BASE, field: other}
    assert upload_fingerprint(**changed) != upload_fingerprint(**BASE)  # type: ignore[arg-type]


def test_manifest_key_depends_on_content_and_tenant() -> None:
    key = manifest_key(api="http://api", tenant="acme", manifest_bytes=b"x")
    assert key == manifest_key(api="http://api", tenant="acme", manifest_bytes=b"x")
    assert key != manifest_key(api="http://api", tenant="acme", manifest_bytes=b"y")
    assert key != manifest_key(api="http://api", tenant="beta", manifest_bytes=b"x")


def test_upload_records_merge_and_persist(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.update_upload("fp", slide_id="s1", path="/a", size_bytes=3)
    store.update_upload("fp", url="http://tus/files/x")
    again = StateStore(tmp_path / "state").upload("fp")
    assert again is not None
    assert (again.slide_id, again.url, again.completed) == ("s1", "http://tus/files/x", False)
    # Atomic writes leave no temporary files behind.
    assert [p.name for p in (tmp_path / "state" / "uploads").iterdir()] == ["fp.json"]
    store.forget_upload("fp")
    assert store.upload("fp") is None


def test_state_dir_is_private(tmp_path: Path) -> None:
    StateStore(tmp_path / "state")
    assert (tmp_path / "state" / "uploads").stat().st_mode & 0o077 == 0


def test_corrupt_record_reads_as_absent(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    (tmp_path / "uploads" / "fp.json").write_text("{not json")
    assert store.upload("fp") is None


def test_tus_storage_hides_completed_uploads(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    storage = TusUrlStorage(store)
    storage.set_item("fp", "http://tus/files/x")
    assert storage.get_item("fp") == "http://tus/files/x"
    store.update_upload("fp", completed=True)
    assert storage.get_item("fp") is None
    storage.remove_item("fp")
    assert store.upload("fp") is None


def test_batches_are_remembered(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.batch_id("k") is None
    store.remember_batch("k", "b1")
    assert store.batch_id("k") == "b1"
    store.forget_batch("k")
    assert store.batch_id("k") is None


def test_sha256_is_cached_by_path_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path / "state")
    path = tmp_path / "slide.bin"
    path.write_bytes(b"hello")
    calls: list[Path] = []
    real = files.sha256_file

    def counting(p: Path, on_progress: object = None) -> str:
        calls.append(p)
        return real(p)

    monkeypatch.setattr(files, "sha256_file", counting)
    expected = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert cached_sha256(path, store) == expected
    assert cached_sha256(path, store) == expected
    assert len(calls) == 1
    path.write_bytes(b"hellp")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cached_sha256(path, store) != expected
    assert len(calls) == 2


def test_sha256_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * (files.HASH_BLOCK_BYTES + 5))
    seen: list[int] = []
    sha256_file(path, seen.append)
    assert seen == [files.HASH_BLOCK_BYTES, files.HASH_BLOCK_BYTES + 5]

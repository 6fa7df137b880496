"""The SDK against the in-memory API and tus server (``httpx.MockTransport``)."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from slidestream_client import sdk, tus
from slidestream_client.errors import (
    AuthenticationError,
    ManifestRefusedError,
    NotFoundError,
    RateLimitedError,
    UploadCancelledError,
    UploadFailedError,
    UploadRefusedError,
    UploadRejectedError,
)
from slidestream_client.progress import NoProgress
from slidestream_contracts.states import Stage, WaitOutcome

from .conftest import TOKEN, Killed

if TYPE_CHECKING:
    from .conftest import FakeServer

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tus, "RETRY_BACKOFF_S", (0.0,))


def make_file(tmp_path: Path, name: str = "slide.svs", size_bytes: int = 3 * MIB) -> Path:
    path = tmp_path / name
    # Random content, so a resume at a wrong offset changes the digest.
    path.write_bytes(random.Random(size_bytes).randbytes(size_bytes))
    return path


class Recorder(NoProgress):
    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.verified = False

    def uploading(self, offset_bytes: int) -> None:
        self.offsets.append(offset_bytes)

    def verifying(self) -> None:
        self.verified = True


def test_upload_sends_the_contract_metadata(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    path = make_file(tmp_path)
    recorder = Recorder()
    with server.client(state_dir) as client:
        result = client.upload_file(
            path, batch_id="b1", meta={"study": "S1"}, chunk_size_bytes=MIB, progress=recorder
        )
    upload = next(iter(server.uploads.values()))
    assert result.status == "uploaded"
    assert result.slide_id == upload.slide_id
    assert result.upload_state == "published"
    assert result.bytes_sent == path.stat().st_size
    assert result.resumed_from_bytes == 0
    assert bytes(upload.data) == path.read_bytes()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert upload.metadata == {
        "filename": "slide.svs",
        "sha256": digest,
        "batch_id": "b1",
        "meta": '{"study":"S1"}',
    }
    creation = server.creation_headers[0]
    assert creation["authorization"] == f"Bearer {TOKEN}"
    assert creation["upload-length"] == str(path.stat().st_size)
    assert recorder.offsets[0] == 0
    assert recorder.offsets[-1] == path.stat().st_size
    assert recorder.verified
    assert sum(1 for method, _ in server.requests if method == "PATCH") == 3


def test_resume_after_kill_sends_only_the_rest(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    path = make_file(tmp_path, size_bytes=8 * MIB)
    server.kill_after_bytes = 3 * MIB + 12345
    with server.client(state_dir) as client, pytest.raises(Killed):
        client.upload_file(path, chunk_size_bytes=2 * MIB)
    upload = next(iter(server.uploads.values()))
    offset = len(upload.data)
    assert 0 < offset < path.stat().st_size
    # A new process: same state directory, the hash comes from the cache.
    with server.client(state_dir) as client:
        result = client.upload_file(path, chunk_size_bytes=2 * MIB)
    assert len(server.uploads) == 1
    assert result.slide_id == upload.slide_id
    assert result.resumed_from_bytes == offset
    assert result.bytes_sent == path.stat().st_size - offset
    assert bytes(upload.data) == path.read_bytes()
    assert result.upload_state == "published"


def test_resume_waits_for_a_locked_upload(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    path = make_file(tmp_path, size_bytes=4 * MIB)
    server.kill_after_bytes = MIB
    with server.client(state_dir) as client, pytest.raises(Killed):
        client.upload_file(path, chunk_size_bytes=MIB)
    server.head_failures = [423, 503]
    with server.client(state_dir) as client:
        result = client.upload_file(path, chunk_size_bytes=MIB)
    assert len(server.uploads) == 1
    assert result.resumed_from_bytes == MIB
    assert result.upload_state == "published"


def test_rerun_of_a_finished_upload_sends_nothing(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    path = make_file(tmp_path)
    with server.client(state_dir) as client:
        first = client.upload_file(path)
        second = client.upload_file(path)
    assert len(server.uploads) == 1
    assert (second.slide_id, second.bytes_sent) == (first.slide_id, 0)
    assert second.resumed_from_bytes == path.stat().st_size


def test_expired_upload_starts_again(server: FakeServer, state_dir: Path, tmp_path: Path) -> None:
    path = make_file(tmp_path)
    server.kill_after_bytes = MIB
    with server.client(state_dir) as client, pytest.raises(Killed):
        client.upload_file(path, chunk_size_bytes=MIB)
    next(iter(server.uploads.values())).state = "expired"
    with server.client(state_dir) as client:
        result = client.upload_file(path, chunk_size_bytes=MIB)
    assert len(server.uploads) == 2
    assert result.resumed_from_bytes == 0
    assert result.status == "uploaded"


def test_transient_patch_failures_are_retried(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    path = make_file(tmp_path)
    server.patch_failures = [503, 423, 409]
    with server.client(state_dir) as client:
        result = client.upload_file(path, chunk_size_bytes=MIB)
    assert result.upload_state == "published"
    assert bytes(next(iter(server.uploads.values())).data) == path.read_bytes()


def test_persistent_failures_give_up(server: FakeServer, state_dir: Path, tmp_path: Path) -> None:
    path = make_file(tmp_path)
    server.patch_failures = [500] * tus.MAX_ATTEMPTS
    with server.client(state_dir) as client, pytest.raises(UploadFailedError) as caught:
        client.upload_file(path)
    assert caught.value.slide_id == next(iter(server.uploads.values())).slide_id
    assert "rerun" in str(caught.value)


def test_refused_creation_shows_the_server_message(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    server.refuse_creation = (413, "quota-exceeded", "the tenant quota is used up")
    with server.client(state_dir) as client, pytest.raises(UploadRefusedError) as caught:
        client.upload_file(make_file(tmp_path))
    assert (caught.value.reason, str(caught.value)) == (
        "quota-exceeded",
        "the tenant quota is used up",
    )


def test_too_large_is_refused_before_hashing(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    server.max_upload_bytes = 10
    with server.client(state_dir) as client, pytest.raises(UploadRefusedError, match="maximum"):
        client.upload_file(make_file(tmp_path))
    hashes = state_dir / "hashes"
    assert not hashes.exists() or not list(hashes.iterdir())


def test_checksum_rejection_is_reported(
    server: FakeServer, state_dir: Path, tmp_path: Path
) -> None:
    with server.client(state_dir) as client, pytest.raises(UploadRejectedError) as caught:
        client.upload_file(make_file(tmp_path), sha256="0" * 64)
    assert caught.value.reason == "checksum-mismatch"
    assert caught.value.slide_id == next(iter(server.uploads.values())).slide_id


def test_cancel_stops_the_transfer(server: FakeServer, state_dir: Path, tmp_path: Path) -> None:
    cancel = threading.Event()

    class CancelAtFirstBlock(NoProgress):
        def uploading(self, offset_bytes: int) -> None:
            if offset_bytes > 0:
                cancel.set()

    with server.client(state_dir) as client, pytest.raises(UploadCancelledError):
        client.upload_file(
            make_file(tmp_path, size_bytes=4 * MIB), progress=CancelAtFirstBlock(), cancel=cancel
        )


def test_wrong_token(server: FakeServer, state_dir: Path, tmp_path: Path) -> None:
    with server.client(state_dir, token="wrong") as client:
        with pytest.raises(AuthenticationError) as caught:
            client.info()
        assert "wrong" not in str(caught.value)
        assert "wrong" not in repr(client)


def test_wait_outcomes(server: FakeServer, state_dir: Path) -> None:
    server.slide_states["s1"] = [
        {"state": None, "upload_state": "verifying"},
        {"state": "uploaded", "step": "upload"},
    ]
    server.slide_states["s2"] = [{"state": "rejected", "step": "upload", "reason": "not-a-slide"}]
    server.slide_states["s3"] = [{"state": "uploaded", "step": "upload"}]
    seen: list[str | None] = []
    with server.client(state_dir) as client:
        reached = client.wait(
            "s1",
            Stage.UPLOADED,
            timeout_s=5,
            poll_interval_s=0.01,
            on_status=lambda s: seen.append(s.state),
        )
        stopped = client.wait("s2", Stage.UPLOADED, timeout_s=5, poll_interval_s=0.01)
        pending = client.wait("s3", Stage.QC, timeout_s=0.05, poll_interval_s=0.01)
        with pytest.raises(NotFoundError):
            client.wait("nope", Stage.QC, timeout_s=1)
    assert reached.outcome is WaitOutcome.REACHED
    assert seen == [None, "uploaded"]
    assert stopped.outcome is WaitOutcome.STOPPED
    assert stopped.status.reason == "not-a-slide"
    assert pending.outcome is WaitOutcome.PENDING


def test_batches(server: FakeServer, state_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("filename,sha256\na.svs," + "a" * 64 + "\n")
    with server.client(state_dir) as client:
        batch_id = client.ensure_batch(manifest)
        assert client.ensure_batch(manifest) == batch_id  # a rerun reuses the batch
        assert len(server.batches) == 1
        assert client.batch(batch_id).complete
        empty = tmp_path / "empty.csv"
        empty.write_text("\n")
        with pytest.raises(ManifestRefusedError, match="row 1"):
            client.create_batch(empty)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The SDK's sleeps, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("slidestream_client.sdk.time.sleep", waits.append)
    return waits


def test_a_rate_limited_request_is_sent_again_after_retry_after(
    server: FakeServer, state_dir: Path, slept: list[float]
) -> None:
    server.rate_limited = [2, 600]
    with server.client(state_dir) as client:
        assert client.info().tenant == "acme"
    assert slept == [2, sdk.MAX_RETRY_AFTER_S]  # a longer Retry-After is waited at most this
    assert server.requests.count(("GET", "/v1/info")) == 3


def test_a_lasting_rate_limit_is_raised_with_its_retry_after(
    server: FakeServer, state_dir: Path, slept: list[float]
) -> None:
    server.rate_limited = [1, 1, 1, 1, 1, 600, 9]
    with server.client(state_dir) as client, pytest.raises(RateLimitedError) as raised:
        client.info()
    assert slept == [1, 1, 1, 1, 1]
    assert (raised.value.status_code, raised.value.reason) == (429, "rate-limited")
    assert raised.value.retry_after_s == 600
    assert server.rate_limited == [9]

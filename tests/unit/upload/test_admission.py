from __future__ import annotations

import pytest

from slidestream_upload.domain.admission import UploadRequest, admit

GIB = 1024**3


def request(size: int | None, sha: str | None = "a" * 64) -> UploadRequest:
    return UploadRequest(declared_size_bytes=size, declared_sha256=sha, filename="s.svs")


def test_a_reasonable_upload_is_admitted() -> None:
    assert (
        admit(request(GIB), max_upload_bytes=20 * GIB, quota_bytes=100 * GIB, used_bytes=0) is None
    )


@pytest.mark.parametrize(
    ("size", "used", "sha", "status", "reason"),
    [
        (None, 0, "a" * 64, 400, "length-required"),
        (0, 0, "a" * 64, 400, "empty-upload"),
        (21 * GIB, 0, "a" * 64, 413, "too-large"),
        (2 * GIB, 99 * GIB, "a" * 64, 413, "quota-exceeded"),
        (GIB, 0, "not-hex", 400, "bad-checksum"),
        (GIB, 0, "A" * 64, 400, "bad-checksum"),
    ],
)
def test_refusals(size: int | None, used: int, sha: str | None, status: int, reason: str) -> None:
    refusal = admit(
        request(size, sha), max_upload_bytes=20 * GIB, quota_bytes=100 * GIB, used_bytes=used
    )
    assert refusal is not None
    assert (refusal.status_code, refusal.reason) == (status, reason)


def test_an_upload_without_a_declared_sha256_is_refused_by_default() -> None:
    refusal = admit(
        request(GIB, None), max_upload_bytes=20 * GIB, quota_bytes=100 * GIB, used_bytes=0
    )
    assert refusal is not None
    assert (refusal.status_code, refusal.reason) == (400, "checksum-required")
    assert "sha256" in refusal.message


def test_the_requirement_can_be_turned_off_for_clients_that_cannot_declare_it() -> None:
    admitted = admit(
        request(GIB, None),
        max_upload_bytes=20 * GIB,
        quota_bytes=100 * GIB,
        used_bytes=0,
        sha256_required=False,
    )
    assert admitted is None

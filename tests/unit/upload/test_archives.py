from __future__ import annotations

import stat

import pytest

from slidestream_upload.domain.archives import ZipMember, check_members

REGULAR = stat.S_IFREG | 0o644


def member(name: str, *, packed: int = 100, unpacked: int = 120, mode: int = REGULAR) -> ZipMember:
    return ZipMember(
        name=name, compressed_bytes=packed, uncompressed_bytes=unpacked, unix_mode=mode
    )


def test_a_normal_series_passes() -> None:
    assert check_members([member("series/1.dcm"), member("series/2.dcm")]) is None


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([], "empty-archive"),
        ([member("../../etc/cron.d/x")], "archive-path-traversal"),
        ([member("data/../../x")], "archive-path-traversal"),
        ([member("/etc/passwd")], "archive-path-traversal"),
        ([member("C:\\x")], "archive-path-traversal"),
        ([member("link", mode=stat.S_IFLNK | 0o777)], "archive-symlink"),
        ([member("bomb", packed=1_000, unpacked=10_000_000)], "archive-bomb"),
    ],
)
def test_unsafe_archives_are_refused(members: list[ZipMember], reason: str) -> None:
    problem = check_members(members)
    assert problem is not None
    assert problem.reason == reason

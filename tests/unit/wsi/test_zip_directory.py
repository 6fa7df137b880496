"""A zip's central directory bounded from its end records alone, before any ``ZipFile`` exists."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable

import pytest

from slidestream_wsi.errors import SlideError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.zip_directory import (
    MAX_COMMENT_BYTES,
    TAIL_BYTES,
    ZipDirectory,
    read_zip_directory,
)
from tests.support.fakes import SparseBytes
from tests.support.zips import end_record, huge_directory_zip, zip64_end_records

TEN_MILLION = 10_000_000


def _zip(members: dict[str, bytes], *, comment: bytes = b"", prefix: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    buffer.write(prefix)
    with zipfile.ZipFile(buffer, "a" if prefix else "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.comment = comment
    return buffer.getvalue()


def _reader(data: bytes) -> Callable[[int, int], bytes]:
    return lambda offset, length: data[offset : offset + length]


def _read(data: bytes, limits: SlideLimits = DEFAULT_LIMITS) -> ZipDirectory:
    return read_zip_directory(_reader(data), len(data), limits)


def _as_zipfile_reads_it(data: bytes) -> tuple[int, int]:
    """(entries, where the directory starts) according to zipfile itself."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return len(archive.infolist()), archive.start_dir


@pytest.fixture(scope="module")
def zip64_archive() -> bytes:
    """A real archive past the classic record's 65 535 entries: zipfile writes ZIP64 records."""
    return _zip({str(i): b"" for i in range(70_000)})


@pytest.mark.parametrize(
    "data",
    [
        _zip({"series/1.dcm": b"a", "series/2.dcm": b"b"}),
        _zip({"a.dcm": b"a"}, comment=b"c" * MAX_COMMENT_BYTES),
        _zip({"a.dcm": b"a"}, comment=b"PK\x05"),
        _zip({"a.dcm": b"a"}, prefix=b"#!/bin/sh\nexit 0\n" * 10),
        _zip({}),
    ],
    ids=["plain", "longest-comment", "comment-like-a-signature", "prepended-bytes", "empty"],
)
def test_the_directory_is_the_one_zipfile_reads(data: bytes) -> None:
    directory = _read(data)
    assert (directory.entry_count, directory.directory_offset) == _as_zipfile_reads_it(data)
    assert not directory.zip64


def test_zip64_records_are_read(zip64_archive: bytes) -> None:
    directory = _read(zip64_archive)
    assert directory.zip64
    assert (directory.entry_count, directory.directory_offset) == _as_zipfile_reads_it(
        zip64_archive
    )
    with pytest.raises(SlideError) as refused:
        _read(zip64_archive, SlideLimits(max_archive_member_count=65_536))
    assert refused.value.reason == "archive-too-many-members"


def test_ten_million_declared_entries_are_refused_from_the_tail() -> None:
    archive = huge_directory_zip(TEN_MILLION, read_budget_bytes=TAIL_BYTES)
    with pytest.raises(SlideError) as refused:
        read_zip_directory(archive.read_at, archive.size_bytes)
    assert refused.value.reason == "archive-too-many-members"
    assert archive.served_bytes <= TAIL_BYTES


def test_a_classic_record_over_the_member_cap_is_refused() -> None:
    data = _zip({f"{i}.dcm": b"" for i in range(20)})
    with pytest.raises(SlideError) as refused:
        _read(data, SlideLimits(max_archive_member_count=10))
    assert refused.value.reason == "archive-too-many-members"


def test_a_directory_over_the_size_cap_is_refused_whatever_count_it_declares() -> None:
    directory_bytes = 2 * 1024**3
    tail = zip64_end_records(entries=5, directory_bytes=directory_bytes, directory_offset=4)
    archive = SparseBytes(
        4 + directory_bytes + len(tail), {0: b"PK\x03\x04", 4 + directory_bytes: tail}
    )
    with pytest.raises(SlideError) as refused:
        read_zip_directory(archive.read_at, archive.size_bytes)
    assert refused.value.reason == "archive-directory-too-large"
    assert archive.served_bytes <= TAIL_BYTES


PLAIN = _zip({"a.dcm": b"a" * 100})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PK\x05\x06",
        random.Random(16).randbytes(4096).replace(b"PK", b"pk"),
        PLAIN[:-10],
        PLAIN[:-30],
        PLAIN[:40] + end_record(entries=1, directory_bytes=1000, directory_offset=0),
        bytes(500) + end_record(entries=100, directory_bytes=46, directory_offset=0),
        zip64_end_records(entries=1, directory_bytes=0, directory_offset=0, disks=2),
    ],
    ids=[
        "empty-file",
        "signature-only",
        "garbage",
        "end-record-cut",
        "directory-cut",
        "directory-before-the-file",
        "more-entries-than-directory-bytes",
        "several-disks",
    ],
)
def test_truncated_and_garbage_archives_are_corrupt(data: bytes) -> None:
    with pytest.raises(SlideError) as refused:
        _read(data)
    assert refused.value.reason == "corrupt-archive"

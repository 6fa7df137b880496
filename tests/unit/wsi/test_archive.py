from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from slidestream_wsi.archive import check_zip, extract_zip
from slidestream_wsi.errors import SlideBombError, UnsafeArchiveError, UnsupportedFormatError
from slidestream_wsi.limits import SlideLimits
from tests.support.hostile_files import zip_of
from tests.support.zips import huge_directory_zip

TAIL_BUDGET_BYTES = 256 * 1024
"""The end records and a reader's buffering, a sliver of any huge test archive."""


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "C:/x.dcm", "a\\..\\evil.dcm"]
)
def test_traversal_members_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeArchiveError) as refused:
        check_zip(_zip(tmp_path / "bad.zip", {name: b"x"}))
    assert refused.value.reason == "archive-path-traversal"


def test_symlink_members_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("link.dcm")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError) as refused:
        check_zip(path)
    assert refused.value.reason == "archive-symlink"


@pytest.mark.parametrize(
    "members",
    [
        {"s/a.dcm": b"a", "s/a.dcm/b.dcm": b"b"},
        {"s/a.dcm/b.dcm": b"b", "s/a.dcm": b"a"},
        {"S/A.DCM": b"a", "s/a.dcm/b.dcm": b"b"},
        {"s/" + "n" * 300 + ".dcm": b"a"},
        {"/".join(["d" * 200] * 6) + ".dcm": b"a"},
        {"s/./a.dcm": b"a", "s/b.dcm": b"b"},
        {"s//a.dcm": b"a"},
    ],
    ids=[
        "file-then-folder",
        "folder-then-file",
        "folder-case",
        "long-part",
        "long-path",
        "dot",
        "empty-part",
    ],
)
def test_members_that_cannot_be_extracted_as_named_are_refused(
    tmp_path: Path, members: dict[str, bytes]
) -> None:
    """Issue 16 (fault scenario n-hostile-names): these passed the upload's check, then deid's
    extraction or detection failed with FileExistsError, OSError(ENAMETOOLONG) or KeyError —
    no SlideError, so each was retried as transient and dead-lettered only when the attempts
    ran out, with no reason saying what was wrong."""
    archive = zip_of(tmp_path / "bad.zip", members)
    with pytest.raises(UnsafeArchiveError) as refused:
        check_zip(archive)
    assert refused.value.reason == "unsafe-archive"
    with pytest.raises(UnsafeArchiveError):
        extract_zip(archive, tmp_path / "out")


def test_a_folder_entry_beside_its_files_is_fine(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "ok.zip", {"series/": b"", "series/a.dcm": b"a"})
    assert [m.name for m in check_zip(archive).members] == ["series/a.dcm"]


def test_zip_bombs_are_refused(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.dcm": bytes(20 * 1024 * 1024)})
    with pytest.raises(SlideBombError) as refused:
        check_zip(bomb)
    assert refused.value.reason == "archive-bomb"
    many = _zip(tmp_path / "many.zip", {f"{i}.dcm": b"x" for i in range(20)})
    with pytest.raises(SlideBombError) as refused:
        check_zip(many, SlideLimits(max_archive_member_count=10))
    assert refused.value.reason == "archive-too-many-members"
    big = _zip(tmp_path / "big.zip", {"a.dcm": b"y" * 5000})
    with pytest.raises(SlideBombError) as refused:
        check_zip(big, SlideLimits(max_archive_uncompressed_bytes=1000))
    assert refused.value.reason == "archive-bomb"


def test_empty_and_unreadable_archives_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError) as refused:
        check_zip(_zip(tmp_path / "empty.zip", {}))
    assert refused.value.reason == "empty-archive"
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(_zip(tmp_path / "ok.zip", {"a.dcm": b"a"}).read_bytes()[:-10])
    with pytest.raises(UnsafeArchiveError) as refused:
        check_zip(truncated)
    assert refused.value.reason == "corrupt-archive"


def test_a_huge_central_directory_is_refused_before_a_zipfile_reads_it() -> None:
    """Issue 16: ``zipfile.ZipFile`` read a 460 MB directory (and would have built ten million
    ``ZipInfo``) before the member cap was looked at; the end records alone now refuse it."""
    archive = huge_directory_zip(10_000_000, read_budget_bytes=TAIL_BUDGET_BYTES)
    with pytest.raises(SlideBombError) as refused:
        check_zip(archive.reader())
    assert refused.value.reason == "archive-too-many-members"
    assert archive.served_bytes <= TAIL_BUDGET_BYTES


def test_an_open_reader_is_checked_like_a_file(tmp_path: Path) -> None:
    path = _zip(tmp_path / "ok.zip", {"series/a.dcm": b"a", "series/b.dcm": b"b"})
    with path.open("rb") as reader:
        listing = check_zip(reader)
    assert [m.name for m in listing.members] == ["series/a.dcm", "series/b.dcm"]


def test_extracts_a_safe_archive_inside_the_destination(tmp_path: Path) -> None:
    path = _zip(tmp_path / "ok.zip", {"series/a.dcm": b"a", "series/b.dcm": b"b"})
    files = extract_zip(path, tmp_path / "out")
    assert [f.read_bytes() for f in files] == [b"a", b"b"]
    assert all(f.is_relative_to((tmp_path / "out").resolve()) for f in files)

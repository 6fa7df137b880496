"""pack_upload / unpack_upload: the round trip, and everything a hostile archive might try."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo import ModelPackageError, pack_upload, unpack_upload
from slidestream_modelrepo.archive import MAX_MEMBERS

MAX_BYTES = 1 << 20


def test_round_trip(card: ModelCardV1) -> None:
    files = {"config.pbtxt": b"name: 'tissue'", "1/model.py": b"pass\n", "1/w/a.bin": b"\x00\x01"}
    data = pack_upload(card, files)
    assert unpack_upload(data, max_bytes=MAX_BYTES) == files
    assert pack_upload(card, dict(reversed(files.items()))) == data  # same push, same bytes


@pytest.mark.parametrize("files", [{}, {"../x": b"x"}, {"/abs": b"x"}])
def test_pack_refuses_nothing_or_unsafe_paths(card: ModelCardV1, files: dict[str, bytes]) -> None:
    with pytest.raises(ModelPackageError):
        pack_upload(card, files)


def tar_gz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buffer.getvalue()


def regular(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    return member, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = target
    return member, b""


def refusal(data: bytes, max_bytes: int = MAX_BYTES) -> tuple[str, str]:
    with pytest.raises(ModelPackageError) as caught:
        unpack_upload(data, max_bytes=max_bytes)
    (problem,) = caught.value.problems
    return problem.field, problem.message


def test_dot_slash_and_directories_are_accepted() -> None:
    directory = tarfile.TarInfo("./1")
    directory.type = tarfile.DIRTYPE
    data = tar_gz((directory, b""), regular("./1/model.pt", b"pt"))
    assert unpack_upload(data, max_bytes=MAX_BYTES) == {"1/model.pt": b"pt"}


@pytest.mark.parametrize(
    "name", ["/etc/cron.d/evil", "../outside", "1/../../outside", "a\\..\\b", "1//x"]
)
def test_paths_outside_the_model_are_refused(name: str) -> None:
    field, _ = refusal(tar_gz(regular("config.pbtxt"), regular(name)))
    assert field == name


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (special("1/link", tarfile.SYMTYPE, "/etc/passwd"), "a link"),
        (special("1/hard", tarfile.LNKTYPE, "config.pbtxt"), "a link"),
        (special("1/dev", tarfile.CHRTYPE), "not a regular file"),
        (special("1/fifo", tarfile.FIFOTYPE), "not a regular file"),
    ],
)
def test_links_and_devices_are_refused(member: tuple[tarfile.TarInfo, bytes], message: str) -> None:
    field, text = refusal(tar_gz(regular("config.pbtxt"), member))
    assert field == member[0].name
    assert text.startswith(message)


def test_size_bomb_stops_at_the_header() -> None:
    # 64 MiB of zeros compress to ~64 KiB; refused from the header, before being inflated.
    bomb = tar_gz(regular("1/model.pt", bytes(64 << 20)))
    assert len(bomb) < 1 << 20
    field, message = refusal(bomb, max_bytes=MAX_BYTES)
    assert (field, message) == ("archive", f"its files add up to more than {MAX_BYTES} bytes")


def test_total_over_many_files_is_refused() -> None:
    data = tar_gz(*(regular(f"1/part-{i}", bytes(400_000)) for i in range(3)))
    assert refusal(data)[1].startswith("its files add up")


def test_too_many_entries_are_refused() -> None:
    data = tar_gz(*(regular(f"1/f{i}", b"") for i in range(MAX_MEMBERS + 1)))
    assert refusal(data) == ("archive", f"more than {MAX_MEMBERS} entries")


def test_duplicate_names_are_refused() -> None:
    data = tar_gz(regular("1/model.pt", b"a"), regular("1/model.pt", b"b"))
    assert refusal(data) == ("1/model.pt", "appears twice in the archive")


@pytest.mark.parametrize(
    "data", [b"", b"not gzip at all", gzip.compress(b"not a tar" * 100), tar_gz()]
)
def test_unreadable_or_empty_archives(data: bytes) -> None:
    field, _ = refusal(data)
    assert field == "archive"

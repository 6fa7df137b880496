"""Safe handling of zip uploads (a DICOM series, or an MRXS file with its data folder).

A zip is untrusted: members may try to escape the extraction folder (``../``, absolute paths,
drive letters), be symbolic links, be encrypted, or be a decompression bomb; or they may be
impossible to lay out on disk (a member that is also another's folder, a name longer than the
file system takes, a name that is not the path it normalises to), which extraction would only
find out as an ``OSError`` or ``KeyError`` that no retry can cure. Everything is checked
from the central directory before a byte is extracted, and extraction counts the bytes it really
writes, because a central directory can lie about sizes. The directory itself is bounded first,
from the end records alone (:mod:`slidestream_wsi.zip_directory`), because opening a
``zipfile.ZipFile`` already reads all of it.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from slidestream_wsi.errors import (
    ArchiveBombError,
    ArchiveLinkError,
    ArchiveMemberCountError,
    ArchivePathError,
    CorruptArchiveError,
    EmptyArchiveError,
    UnsafeArchiveError,
)
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.zip_directory import ZipDirectory, read_zip_directory

ZIP_MAGIC = b"PK\x03\x04"
"""APPNOTE §4.3.7: a zip starts with a local file header (an empty zip, which starts with the
end-of-central-directory record, is no slide)."""

_COPY_CHUNK_BYTES = 1024 * 1024
# Small members (a Slidedat.ini, a DICOMDIR) may compress very well; the ratio cap applies to
# members whose uncompressed size is above this, which is where bombs live.
_RATIO_CHECK_MIN_BYTES = 1024 * 1024
_ZIP_FLAG_ENCRYPTED = 0x1
MAX_MEMBER_NAME_PART_BYTES = 255
"""The longest file or folder name Linux file systems take (ext4, XFS: ``NAME_MAX``)."""
MAX_MEMBER_NAME_BYTES = 1024
"""The longest member path extracted (scratch folder + member stays far below ``PATH_MAX``)."""


@dataclass(frozen=True, slots=True)
class ArchiveMember:
    """One regular file of a checked archive."""

    name: str
    """The member's path inside the archive, normalised to forward slashes."""
    uncompressed_bytes: int
    compressed_bytes: int


@dataclass(frozen=True, slots=True)
class ArchiveListing:
    """The regular-file members of an archive that passed every check."""

    members: tuple[ArchiveMember, ...]
    uncompressed_bytes: int


def _safe_member_path(name: str) -> PurePosixPath:
    if "\\" in name or "\x00" in name:
        raise ArchivePathError("archive member name with a backslash or NUL")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise ArchivePathError("archive member with an absolute path")
    if any(part == ".." for part in path.parts):
        raise ArchivePathError("archive member with a parent-directory traversal")
    if path.parts and path.parts[0].endswith(":"):
        raise ArchivePathError("archive member with a drive letter")
    return path


def _extractable_key(name: str, path: PurePosixPath) -> str:
    """The case-folded path a file member is extracted to; raise when it cannot be extracted
    under the name it has: a name that is not the path it normalises to (``a/./b``, ``a//b``:
    the listing would name an entry the archive does not hold), or one too long to create."""
    if path.as_posix() != name:
        raise UnsafeArchiveError("archive member name is not a normalised path")
    if len(name.encode()) > MAX_MEMBER_NAME_BYTES or any(
        len(part.encode()) > MAX_MEMBER_NAME_PART_BYTES for part in path.parts
    ):
        raise UnsafeArchiveError("archive member name too long to extract")
    return name.lower()


def _check_layout(keys: set[str]) -> None:
    """Refuse a file member that is also the folder of another (``a.dcm`` and ``a.dcm/b``):
    both cannot be extracted."""
    for key in keys:
        for parent in PurePosixPath(key).parents:
            if parent.as_posix() in keys:
                raise UnsafeArchiveError("archive member is both a file and a folder")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # The high 16 bits of external_attr carry the Unix st_mode for archives made on Unix
    # (APPNOTE 4.4.15 with "version made by" = 3).
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def check_zip_directory(
    path: Path | BinaryIO, limits: SlideLimits = DEFAULT_LIMITS
) -> ZipDirectory:
    """The central directory an archive's end records declare, refused over the member-count and
    directory-size caps; reads only the archive's last bytes (no ``ZipFile`` is built)."""
    if isinstance(path, Path):
        with path.open("rb") as reader:
            return check_zip_directory(reader, limits)
    size_bytes = path.seek(0, io.SEEK_END)

    def read_at(offset: int, length: int) -> bytes:
        path.seek(offset)
        return path.read(length)

    return read_zip_directory(read_at, size_bytes, limits)


def check_zip(path: Path | BinaryIO, limits: SlideLimits = DEFAULT_LIMITS) -> ArchiveListing:
    """List an archive's files after checking every member; raise on anything unsafe.

    Only the end records and then the central directory are read, so ``path`` may be a seekable
    reader over a remote object (ranged reads) as well as a local file.
    """
    check_zip_directory(path, limits)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise CorruptArchiveError("not a readable zip archive") from exc
    if len(infos) > limits.max_archive_member_count:
        raise ArchiveMemberCountError("zip has more members than MAX_ARCHIVE_MEMBER_COUNT")
    members: list[ArchiveMember] = []
    total_uncompressed = 0
    total_compressed = 0
    seen: set[str] = set()
    for info in infos:
        member_path = _safe_member_path(info.filename)
        if _is_symlink(info):
            raise ArchiveLinkError("archive member is a symbolic link")
        if info.flag_bits & _ZIP_FLAG_ENCRYPTED:
            raise UnsafeArchiveError("archive member is encrypted")
        if info.is_dir():
            continue
        key = _extractable_key(info.filename, member_path)
        if key in seen:
            raise UnsafeArchiveError("archive has two members with the same name")
        seen.add(key)
        total_uncompressed += info.file_size
        total_compressed += info.compress_size
        if total_uncompressed > limits.max_archive_uncompressed_bytes:
            raise ArchiveBombError("zip uncompressed size exceeds MAX_ARCHIVE_UNCOMPRESSED_BYTES")
        if (
            info.file_size > _RATIO_CHECK_MIN_BYTES
            and info.file_size > limits.max_archive_compression_ratio * max(info.compress_size, 1)
        ):
            raise ArchiveBombError("zip member compression ratio exceeds the limit")
        members.append(
            ArchiveMember(member_path.as_posix(), int(info.file_size), int(info.compress_size))
        )
    if (
        total_uncompressed > _RATIO_CHECK_MIN_BYTES
        and total_uncompressed > limits.max_archive_compression_ratio * max(total_compressed, 1)
    ):
        raise ArchiveBombError("zip compression ratio exceeds the limit")
    if not members:
        raise EmptyArchiveError("the zip holds no files")
    _check_layout(seen)
    return ArchiveListing(tuple(members), total_uncompressed)


def read_member_head(path: Path, member: str, nbytes: int) -> bytes:
    """The first ``nbytes`` of a member (for content sniffing), without extracting it."""
    with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
        return stream.read(nbytes)


def extract_zip(path: Path, destination: Path, limits: SlideLimits = DEFAULT_LIMITS) -> list[Path]:
    """Extract a checked archive into ``destination``; return the extracted files in order.

    Bytes are counted while writing: a member that inflates beyond its declared size, or an
    archive beyond ``MAX_ARCHIVE_UNCOMPRESSED_BYTES``, stops the extraction with a typed error.
    """
    listing = check_zip(path, limits)
    root = destination.resolve()
    root.mkdir(parents=True, exist_ok=True)
    written_total = 0
    extracted: list[Path] = []
    with zipfile.ZipFile(path) as archive:
        for member in listing.members:
            target = (root / member.name).resolve()
            if not target.is_relative_to(root):
                raise ArchivePathError("archive member resolves outside the destination")
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with archive.open(member.name) as source, target.open("xb") as sink:
                while chunk := source.read(_COPY_CHUNK_BYTES):
                    written += len(chunk)
                    written_total += len(chunk)
                    if written > member.uncompressed_bytes:
                        raise ArchiveBombError("zip member inflates beyond its declared size")
                    if written_total > limits.max_archive_uncompressed_bytes:
                        raise ArchiveBombError("zip inflates beyond MAX_ARCHIVE_UNCOMPRESSED_BYTES")
                    sink.write(chunk)
            extracted.append(target)
    return extracted

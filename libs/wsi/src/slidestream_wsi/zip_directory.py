"""What a zip's end records claim about its central directory, read from the archive's tail only.

``zipfile.ZipFile`` reads the whole central directory into memory and builds one ``ZipInfo`` per
entry while it is being constructed, before a caller can count anything: an archive whose end
records declare ten million entries, or a directory of gigabytes, exhausts a worker's memory
just by being opened. The end-of-central-directory record (APPNOTE 6.3.10, 4.3.16) and, for
ZIP64, its locator (4.3.15) and record (4.3.14) sit within the last 64 KiB + 98 bytes, so
:func:`read_zip_directory` reads those few bytes and refuses claims over the caps before any
``ZipFile`` exists.

The records are looked for exactly where :mod:`zipfile` looks for them (the last 22 bytes when
they hold a record without a comment, else the last signature in the final 64 KiB + 22 bytes;
the ZIP64 record right before its locator), so the record checked here is the one the
``ZipFile`` built afterwards uses, and the directory it will read is the one bounded here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from slidestream_wsi.errors import (
    ArchiveDirectoryError,
    ArchiveMemberCountError,
    CorruptArchiveError,
)
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits

ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, length)``: the archive's bytes there, short at its end."""

END_RECORD = struct.Struct("<4s4H2LH")
"""APPNOTE 4.3.16: signature, this disk, the directory's disk, entries on this disk, entries in
all, directory size, directory offset, comment length (22 bytes, then the comment)."""
END_RECORD_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR = struct.Struct("<4sLQL")
"""APPNOTE 4.3.15: signature, the ZIP64 record's disk, its offset, number of disks (20 bytes)."""
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
"""APPNOTE 4.3.14: signature, record size, versions made by and needed, this disk, the
directory's disk, entries on this disk, entries in all, directory size, directory offset (56
bytes; zipfile reads no extensible data sector, so neither does this)."""
ZIP64_END_RECORD_SIGNATURE = b"PK\x06\x06"
MAX_COMMENT_BYTES = 0xFFFF
"""The comment length is a 16-bit field."""
SEARCH_BYTES = MAX_COMMENT_BYTES + 1 + END_RECORD.size
"""How far from the end zipfile searches for the end record (one byte more than needed)."""
TAIL_BYTES = SEARCH_BYTES + ZIP64_LOCATOR.size + ZIP64_END_RECORD.size
"""The most a caller that prefetches the tail needs: the end records in every layout zipfile
reads."""
MIN_DIRECTORY_ENTRY_BYTES = 46
"""APPNOTE 4.3.12: a central directory header without name, extra field or comment."""


@dataclass(frozen=True, slots=True)
class ZipDirectory:
    """The central directory as the end records declare it (within the caps)."""

    entry_count: int
    directory_bytes: int
    directory_offset: int
    """Where the directory starts in the file, as zipfile computes it: right before the end
    records, whatever offset they declare (bytes prepended to an archive shift it)."""
    zip64: bool


def read_zip_directory(
    read_at: ReadAt, size_bytes: int, limits: SlideLimits = DEFAULT_LIMITS
) -> ZipDirectory:
    """The directory the end records of a ``size_bytes`` archive declare; raise
    :class:`ArchiveMemberCountError` or :class:`ArchiveDirectoryError` over the caps, and
    :class:`CorruptArchiveError` when there are no readable end records or they contradict the
    file. Reads at most :data:`TAIL_BYTES` from the end."""
    record_at, record = _find_end_record(read_at, size_bytes)
    _, _, _, _, entries, directory_bytes, _, _ = END_RECORD.unpack(record)
    directory_end = record_at
    zip64 = _zip64_claims(read_at, record_at)
    if zip64 is not None:
        entries, directory_bytes = zip64
        directory_end = record_at - ZIP64_LOCATOR.size - ZIP64_END_RECORD.size
    if entries > limits.max_archive_member_count:
        raise ArchiveMemberCountError("zip declares more members than MAX_ARCHIVE_MEMBER_COUNT")
    if directory_bytes > limits.max_archive_directory_bytes:
        raise ArchiveDirectoryError("zip central directory exceeds MAX_ARCHIVE_DIRECTORY_BYTES")
    directory_offset = directory_end - directory_bytes
    if directory_offset < 0:
        raise CorruptArchiveError("zip central directory would start before the file")
    if entries * MIN_DIRECTORY_ENTRY_BYTES > directory_bytes:
        raise CorruptArchiveError("zip central directory too small for the entries it declares")
    return ZipDirectory(entries, directory_bytes, directory_offset, zip64 is not None)


def _find_end_record(read_at: ReadAt, size_bytes: int) -> tuple[int, bytes]:
    """The end record's offset and bytes, found where zipfile finds it."""
    if size_bytes < END_RECORD.size:
        raise CorruptArchiveError("file too short for a zip end record")
    last = read_at(size_bytes - END_RECORD.size, END_RECORD.size)
    if (
        len(last) == END_RECORD.size
        and last.startswith(END_RECORD_SIGNATURE)
        and last.endswith(b"\x00\x00")
    ):
        return size_bytes - END_RECORD.size, last
    # A comment follows the record; the last signature wins, as in zipfile.
    window_at = max(size_bytes - SEARCH_BYTES, 0)
    window = read_at(window_at, size_bytes - window_at)
    found = window.rfind(END_RECORD_SIGNATURE)
    record = window[found : found + END_RECORD.size] if found >= 0 else b""
    if len(record) != END_RECORD.size:
        raise CorruptArchiveError("no zip end record (not a zip, or cut short)")
    return window_at + found, record


def _zip64_claims(read_at: ReadAt, record_at: int) -> tuple[int, int] | None:
    """(entries, directory bytes) of the ZIP64 record before the end record, or ``None`` when
    there is none (then zipfile uses the classic record's fields, and so do we)."""
    locator_at = record_at - ZIP64_LOCATOR.size
    if locator_at < 0:
        return None
    locator = read_at(locator_at, ZIP64_LOCATOR.size)
    if len(locator) != ZIP64_LOCATOR.size or not locator.startswith(ZIP64_LOCATOR_SIGNATURE):
        return None
    _, record_disk, _, disks = ZIP64_LOCATOR.unpack(locator)
    if record_disk != 0 or disks > 1:
        raise CorruptArchiveError("zip spans several disks")
    zip64_at = locator_at - ZIP64_END_RECORD.size
    if zip64_at < 0:
        return None
    record = read_at(zip64_at, ZIP64_END_RECORD.size)
    if len(record) != ZIP64_END_RECORD.size or not record.startswith(ZIP64_END_RECORD_SIGNATURE):
        return None
    fields = ZIP64_END_RECORD.unpack(record)
    entries, directory_bytes = fields[7], fields[8]
    return int(entries), int(directory_bytes)

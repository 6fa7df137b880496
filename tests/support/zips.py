"""Zip end records written field by field (APPNOTE 6.3.10, 4.3.14-4.3.16), for archives that
claim what no honest writer would: millions of entries, a directory of gigabytes."""

from __future__ import annotations

import struct

from tests.support.fakes import SparseBytes

ZIP64_MARK_16 = 0xFFFF
ZIP64_MARK_32 = 0xFFFF_FFFF
"""What a ZIP64 archive's classic end record holds in the fields its ZIP64 record carries."""
LOCAL_HEADER = b"PK\x03\x04"
DIRECTORY_ENTRY_BYTES = 46
"""A central directory header without name, extra field or comment (APPNOTE 4.3.12)."""


def end_record(
    *, entries: int, directory_bytes: int, directory_offset: int, comment: bytes = b""
) -> bytes:
    return (
        struct.pack(
            "<4s4H2LH",
            b"PK\x05\x06",
            0,
            0,
            entries,
            entries,
            directory_bytes,
            directory_offset,
            len(comment),
        )
        + comment
    )


def zip64_end_records(
    *,
    entries: int,
    directory_bytes: int,
    directory_offset: int,
    comment: bytes = b"",
    disks: int = 1,
) -> bytes:
    """The ZIP64 record, its locator and the classic record (marked), as they end a file."""
    record_at = directory_offset + directory_bytes
    record = struct.pack(
        "<4sQ2H2L4Q",
        b"PK\x06\x06",
        44,  # the record's size after this field (APPNOTE 4.3.14.1)
        45,
        45,
        0,
        0,
        entries,
        entries,
        directory_bytes,
        directory_offset,
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, record_at, disks)
    classic = struct.pack(
        "<4s4H2LH",
        b"PK\x05\x06",
        0,
        0,
        ZIP64_MARK_16,
        ZIP64_MARK_16,
        ZIP64_MARK_32,
        ZIP64_MARK_32,
        len(comment),
    )
    return record + locator + classic + comment


def huge_directory_zip(entries: int, *, read_budget_bytes: int | None = None) -> SparseBytes:
    """A zip whose ZIP64 end records declare ``entries`` entries and a directory just big enough
    for them (46 bytes each), laid out as a real archive would be: a local header first, the
    directory, then the end records. Only the head and the tail are anything but zeros."""
    directory_offset = 4096
    directory_bytes = entries * DIRECTORY_ENTRY_BYTES
    tail = zip64_end_records(
        entries=entries, directory_bytes=directory_bytes, directory_offset=directory_offset
    )
    size_bytes = directory_offset + directory_bytes + len(tail)
    return SparseBytes(
        size_bytes,
        {0: LOCAL_HEADER, size_bytes - len(tail): tail},
        read_budget_bytes=read_budget_bytes,
    )

"""Checks on a zip's member list before anyone extracts it.

A zip can carry members named ``../../etc/cron.d/x`` (path traversal, "Zip Slip"), absolute paths,
symbolic links (Unix mode in the external attributes), or compress gigabytes into kilobytes (a zip
bomb). The upload service reads only the central directory, so it refuses these before the slide
goes any further.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_ZIP_MEMBERS = 100_000
"""A 3DHistech MRXS data folder has a few thousand files; DICOM series a few dozen."""
MAX_ZIP_UNCOMPRESSED_BYTES = 64 * 1024**3
MAX_ZIP_COMPRESSION_RATIO = 200
"""Slide tiles are already compressed; ratios beyond this are a bomb, not a slide."""


@dataclass(frozen=True, slots=True)
class ZipMember:
    name: str
    compressed_bytes: int
    uncompressed_bytes: int
    unix_mode: int


@dataclass(frozen=True, slots=True)
class ArchiveProblem:
    reason: str
    detail: str


def _unsafe_name(name: str) -> bool:
    if not name or "\x00" in name or name.startswith(("/", "\\")):
        return True
    if len(name) > 1 and name[1] == ":":  # a Windows drive letter
        return True
    return ".." in PurePosixPath(name.replace("\\", "/")).parts


def check_members(members: list[ZipMember]) -> ArchiveProblem | None:
    """The first reason to refuse this archive, or ``None`` when it is safe to hand on."""
    if not members:
        return ArchiveProblem("empty-archive", "the zip holds no files")
    if len(members) > MAX_ZIP_MEMBERS:
        return ArchiveProblem("archive-too-many-members", f"more than {MAX_ZIP_MEMBERS} members")
    total = 0
    for index, member in enumerate(members):
        if _unsafe_name(member.name):
            return ArchiveProblem(
                "archive-path-traversal", f"member #{index} has an unsafe path (absolute or '..')"
            )
        if stat.S_ISLNK(member.unix_mode):
            return ArchiveProblem("archive-symlink", f"member #{index} is a symbolic link")
        total += member.uncompressed_bytes
        compressed = max(member.compressed_bytes, 1)
        if member.uncompressed_bytes / compressed > MAX_ZIP_COMPRESSION_RATIO:
            return ArchiveProblem(
                "archive-bomb", f"member #{index} expands more than {MAX_ZIP_COMPRESSION_RATIO}x"
            )
    if total > MAX_ZIP_UNCOMPRESSED_BYTES:
        return ArchiveProblem("archive-bomb", "the archive expands beyond the size limit")
    return None

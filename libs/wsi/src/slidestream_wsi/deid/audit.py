"""The record of what de-identification removed.

Names of fields and images go to the audit trail and events; the removed values stay in memory
only, so that the caller can byte-scan the output for them, and are hidden from ``repr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MIN_SCAN_TOKEN_CHARS = 6
"""Removed values shorter than this are not byte-scanned by default: a 4-byte value turns up by
chance in a gigabyte of compressed tiles."""

_MAX_VALUE_CHARS = 256
_TEXT_RUN = re.compile(r"[^<>\"'=\x00-\x1f|;]{6,256}")
_NAME_SAFE = re.compile(r"^[A-Za-z0-9_.:(), \-\[\]]{1,96}$")


class AuditRecorder:
    """Collects names and values while a de-identifier works."""

    def __init__(self) -> None:
        self._fields: list[str] = []
        self._images: list[str] = []
        self._values: set[str] = set()

    def removed_field(self, name: str, value: str | None = None) -> None:
        safe = name if _NAME_SAFE.match(name) else "unnamed_field"
        if safe not in self._fields:
            self._fields.append(safe)
        if value is not None:
            self.removed_value(value)

    def removed_value(self, value: str) -> None:
        text = value.strip().strip("\x00").strip()
        if not text:
            return
        if len(text) <= _MAX_VALUE_CHARS:
            self._values.add(text)
            return
        # A long blob (XMP, a whole description): keep its text runs, which are what a byte
        # scan can look for.
        for piece in _TEXT_RUN.findall(text):
            piece = piece.strip()
            if piece:
                self._values.add(piece)

    def removed_image(self, name: str) -> None:
        if name not in self._images:
            self._images.append(name if _NAME_SAFE.match(name) else "unnamed_image")

    def finish(self) -> DeidAudit:
        return DeidAudit(tuple(self._fields), tuple(self._images), frozenset(self._values))


@dataclass(frozen=True, slots=True)
class DeidAudit:
    removed_fields: tuple[str, ...]
    removed_images: tuple[str, ...]
    removed_values: frozenset[str] = field(repr=False)
    """The original values of the removed fields: memory only, never logged or published."""

    def scan_tokens(self, min_chars: int = MIN_SCAN_TOKEN_CHARS) -> list[str]:
        """Removed values long enough to byte-scan the output for, longest first."""
        return sorted((v for v in self.removed_values if len(v) >= min_chars), key=len)[::-1]

    def __repr__(self) -> str:
        return (
            f"DeidAudit(removed_fields={self.removed_fields!r}, "
            f"removed_images={self.removed_images!r}, removed_values=<{len(self.removed_values)}>)"
        )

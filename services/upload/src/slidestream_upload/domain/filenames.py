"""Client file names: kept only as metadata, never used to build a path or an object key.

Even as metadata they reach logs, HTML and terminals, so they are made harmless: directory parts
dropped (``../../etc/passwd`` becomes ``passwd``), control characters (NUL included) and Unicode
bidirectional controls removed (CVE-2021-42574 "Trojan Source": U+202A to U+202E and U+2066 to
U+2069 make a name display in another order than it is stored, hiding its real extension),
normalised to NFC and bounded in length.
"""

from __future__ import annotations

import unicodedata

MAX_FILENAME_BYTES = 255
"""The common file-system limit (ext4, XFS, NTFS in UTF-16 units)."""

FALLBACK_FILENAME = "unnamed"

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _allowed(char: str) -> bool:
    if char in _BIDI_CONTROLS:
        return False
    # Cc: control characters (NUL, newlines, escapes); Cf: other invisible format characters.
    return unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co", "Cn"}


def sanitize_filename(raw: str) -> str:
    """The last path component of ``raw``, stripped of anything that could mislead or inject."""
    normalized = unicodedata.normalize("NFC", raw)
    cleaned = "".join(char for char in normalized if _allowed(char))
    base = cleaned.replace("\\", "/").rsplit("/", 1)[-1].strip().strip(".")
    if not base:
        return FALLBACK_FILENAME
    encoded = base.encode("utf-8")
    if len(encoded) > MAX_FILENAME_BYTES:
        base = encoded[:MAX_FILENAME_BYTES].decode("utf-8", "ignore")
    return base

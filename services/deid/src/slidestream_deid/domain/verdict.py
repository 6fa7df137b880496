"""The residual-PHI gate: a de-identified output passes only if nothing known about the patient
is left in it. Any finding fails the slide closed (``slides.rejected.v1``, ``phi-residual``).

Findings name *where* (a metadata location, a byte offset, an image role), never *what*: the
report goes into events and logs, and the value is patient data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from slidestream_wsi.errors import (
    DeidentificationError,
)

REASON_PHI_RESIDUAL = "phi-residual"
MAX_DETAIL_CHARS = 2000
"""SlideRejectedV1.detail's limit."""
KEPT_IMAGE_ROLES = frozenset({"thumbnail"})
"""Associated images a de-identified slide may keep (a downsampled pyramid image, no label)."""

# DeidentificationError messages of slidestream_wsi.deid that mean "identity is still in the
# output" (the library's own post-conditions), as opposed to "the output is broken".
_RESIDUAL_MESSAGES = ("still present", "associated image survived")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    """``metadata``, ``bytes`` or ``image``."""
    where: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.where}"


@dataclass(frozen=True, slots=True)
class ByteHit:
    """A token found in an output's bytes (token index, never the token)."""

    artefact: str
    token_index: int
    offset: int
    encoding: str


@dataclass(frozen=True, slots=True)
class ResidualPhiVerdict:
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        return not self.findings

    def detail(self) -> str:
        """A summary for the rejection event: counts and places, no values."""
        if self.clean:
            return ""
        kinds = sorted({f.kind for f in self.findings})
        head = f"{len(self.findings)} residual finding(s) in {', '.join(kinds)}: "
        listed = ""
        for finding in self.findings:
            piece = f"{finding}; "
            if len(head) + len(listed) + len(piece) > MAX_DETAIL_CHARS - 5:
                listed += "..."
                break
            listed += piece
        return (head + listed).rstrip("; ")


def _word_pattern(token: str) -> re.Pattern[str]:
    # Whole words only: an identifier glued into a longer alphanumeric run is another value.
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(token)}(?![0-9A-Za-z])", re.IGNORECASE)


def metadata_findings(
    strings: Iterable[tuple[str, str]], tokens: Sequence[str], artefact: str
) -> list[Finding]:
    """Locations of metadata strings (``(location, value)``) that contain a token."""
    patterns = [_word_pattern(token) for token in tokens]
    return [
        Finding("metadata", f"{artefact}:{location}")
        for location, value in strings
        if any(pattern.search(value) for pattern in patterns)
    ]


def image_findings(roles: Iterable[str], *, label_replaced: bool, artefact: str) -> list[Finding]:
    """Associated images that must not survive (labels and macros show the slide's paper label;
    a replaced label only shows the pseudonym)."""
    allowed = KEPT_IMAGE_ROLES | ({"label"} if label_replaced else set())
    return [Finding("image", f"{artefact}:{role}") for role in roles if role not in allowed]


def byte_findings(hits: Iterable[ByteHit]) -> list[Finding]:
    return [
        Finding("bytes", f"{hit.artefact}@{hit.offset} (token {hit.token_index}, {hit.encoding})")
        for hit in hits
    ]


def decide(findings: Iterable[Finding]) -> ResidualPhiVerdict:
    return ResidualPhiVerdict(tuple(findings))


def is_residual_failure(error: DeidentificationError) -> bool:
    """Whether the library refused its own output because identity was left in it."""
    message = str(error)
    return any(marker in message for marker in _RESIDUAL_MESSAGES)

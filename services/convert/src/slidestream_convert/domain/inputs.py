"""The identity of one conversion input: the de-identified artefacts' digests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from uuid import UUID

EVENT_ID_NAMESPACE = UUID("6f1c3a52-94d1-4c1e-8a7e-2d0b7f4c9e13")
"""Namespace of convert's deterministic event ids: UUIDv5 of slide id, input digest and topic."""


def input_digest(artefact_sha256s: Sequence[str]) -> str:
    """One sha256 for the input: the artefact's own for one file, else a digest of the sorted
    digests (a DICOM series arrives as several objects, in no guaranteed order)."""
    if len(artefact_sha256s) == 1:
        return artefact_sha256s[0]
    joined = "\n".join(sorted(artefact_sha256s)).encode()
    return hashlib.sha256(joined).hexdigest()

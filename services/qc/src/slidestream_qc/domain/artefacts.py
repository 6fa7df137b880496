"""What QC reads and writes.

Reads: only the DICOM instances of the levels it needs (``converted/…/dicom/level-<i>.dcm``, one
object per level), so a gigabyte slide costs QC a few megabytes; the pyramidal TIFF when the
tenant has no DICOM output. Writes: ``derived/<tenant>/<slide_id>/qc/…`` under fixed names, so
a redelivery overwrites.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar
from uuid import UUID

from slidestream_contracts.quarantine import slide_object_key
from slidestream_wsi.convert.model import level_file_name

QC_FOLDER = "qc"
REPORT_NAME = "report.json"
SUMMARY_NAME = "report.html"
"""The one-page summary; it refers to the PNGs beside it by relative name."""


class Ref(Protocol):
    @property
    def key(self) -> str: ...


R = TypeVar("R", bound=Ref)


def refs_for_levels(dicom: Sequence[R], indices: Sequence[int]) -> list[R] | None:
    """The DICOM objects holding ``indices``; ``None`` when one of them is missing."""
    by_name: Mapping[str, R] = {ref.key.rsplit("/", 1)[-1]: ref for ref in dicom}
    chosen = [by_name.get(level_file_name(i)) for i in indices]
    if any(ref is None for ref in chosen):
        return None
    return [ref for ref in chosen if ref is not None]


def derived_key(tenant: str, slide_id: UUID, name: str) -> str:
    return slide_object_key(tenant, slide_id, f"{QC_FOLDER}/{name}")


def content_type(name: str) -> str:
    if name.endswith(".png"):
        return "image/png"
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".html"):
        return "text/html; charset=utf-8"
    return "application/octet-stream"

"""What a model run reads and writes.

Reads: from the QC event alone, the one converted DICOM level at the model's spacing
(``level-<i>.dcm``), a small level for the heat maps' thumbnail, and QC's tissue mask.
Writes: ``derived/<tenant>/<slide_id>/inference/<model>/<version>/`` under fixed names, so a
redo overwrites: ``scores.npz``, ``heatmap-<label>.png``, ``embeddings.npz``,
``slide-embedding.npy``, ``summary.json``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar
from uuid import UUID

import numpy as np
import numpy.typing as npt

from slidestream_contracts.quarantine import slide_object_key
from slidestream_wsi.convert.model import level_file_name
from slidestream_wsi.pyramid import PyramidLevel

EVENT_ID_NAMESPACE = UUID("7a8f8d26-0691-4510-97f5-93ab621ad455")
"""Namespace of inference's deterministic event ids: UUIDv5 of slide id, input digest, topic."""

INFERENCE_FOLDER = "inference"
SCORES_NAME = "scores.npz"
SUMMARY_NAME = "summary.json"
THUMBNAIL_LONG_SIDE_PX = 1024
"""The heat maps' background: the smallest level at least this long (QC's pictures' size)."""


def heatmap_name(label: str) -> str:
    return f"heatmap-{label}.png"


def derived_key(tenant: str, slide_id: UUID, model: str, version: str, name: str) -> str:
    return slide_object_key(tenant, slide_id, f"{INFERENCE_FOLDER}/{model}/{version}/{name}")


def content_type(name: str) -> str:
    if name.endswith(".png"):
        return "image/png"
    if name.endswith(".json"):
        return "application/json"
    return "application/octet-stream"


class Ref(Protocol):
    @property
    def key(self) -> str: ...


R = TypeVar("R", bound=Ref)


def level_ref(dicom: Sequence[R], index: int) -> R | None:
    """The DICOM object of level ``index`` (by its fixed name), if the event names it."""
    wanted = level_file_name(index)
    return next((ref for ref in dicom if ref.key.rsplit("/", 1)[-1] == wanted), None)


def thumbnail_level(levels: Sequence[PyramidLevel]) -> PyramidLevel:
    """The smallest level whose long side is at least :data:`THUMBNAIL_LONG_SIDE_PX` (the
    largest level when none is that long)."""
    long_enough = [lv for lv in levels if max(lv.width_px, lv.height_px) >= THUMBNAIL_LONG_SIDE_PX]
    if not long_enough:
        return min(levels, key=lambda lv: lv.downsample)
    return max(long_enough, key=lambda lv: lv.downsample)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Arrays as one ``.npz`` (NumPy's zip of ``.npy`` files; read without pickle)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def npy_bytes(array: npt.ArrayLike) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def json_bytes(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()

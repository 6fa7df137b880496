"""Where converted outputs go: ``converted/<tenant>/<slide_id>/{dicom,tiff}/…``.

Names come from the converter's deterministic file names (``level-0.dcm``, ``thumbnail.dcm``,
``slide.ome.tiff``), so a redelivery overwrites the same objects instead of adding new ones.
"""

from __future__ import annotations

PROVENANCE_ARTEFACT = "provenance.json"


def dicom_artefact(file_name: str) -> str:
    return f"dicom/{file_name}"


def tiff_artefact(file_name: str) -> str:
    return f"tiff/{file_name}"


def content_type(artefact: str) -> str:
    if artefact.endswith(".dcm"):
        return "application/dicom"  # RFC 3240
    if artefact.endswith((".tif", ".tiff")):
        return "image/tiff"  # RFC 3302
    if artefact.endswith(".json"):
        return "application/json"
    return "application/octet-stream"


def source_file_name(key: str, index: int) -> str:
    """A local name for the ``index``-th de-identified artefact that keeps its extension (the
    readers detect by content, but a DICOM series needs distinct names)."""
    base = key.rsplit("/", 1)[-1]
    return f"{index:04d}-{base}"

"""Where de-identified outputs go: ``deidentified/<tenant>/<slide_id>/<artefact>``.

Names are deterministic (format and the output's own file name, which for DICOM is the remapped
SOP Instance UID, itself a keyed function of the original), so a redelivery overwrites the same
objects instead of adding new ones.
"""

from __future__ import annotations

from slidestream_wsi.detect import SlideFormat

_SINGLE_FILE_NAMES: dict[SlideFormat, str] = {
    SlideFormat.APERIO_SVS: "slide.svs",
    SlideFormat.GENERIC_TIFF: "slide.tiff",
    SlideFormat.OME_TIFF: "slide.ome.tiff",
    SlideFormat.HAMAMATSU_NDPI: "slide.ndpi",
    SlideFormat.PHILIPS_TIFF: "slide.tiff",
    SlideFormat.DICOM_WSI: "slide.dcm",
}
DICOM_SERIES_FOLDER = "dicom"


def artefact_name(fmt: SlideFormat, output_file_name: str, *, series: bool) -> str:
    """The artefact name of one output file of a de-identification."""
    if series:
        return f"{DICOM_SERIES_FOLDER}/{output_file_name}"
    return _SINGLE_FILE_NAMES.get(fmt, "slide")


def content_type(artefact: str) -> str:
    if artefact.endswith(".dcm"):
        return "application/dicom"  # RFC 3240
    if artefact.endswith((".svs", ".tiff", ".ndpi")):
        return "image/tiff"  # RFC 3302
    return "application/octet-stream"

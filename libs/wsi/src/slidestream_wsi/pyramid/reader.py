"""Open a slide, whatever its container: the one entry point of the slide reader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slidestream_wsi.detect import DICOM_PREAMBLE_BYTES, is_dicom_head
from slidestream_wsi.errors import UnsupportedFormatError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.pyramid.level import SourceSlide

# TIFF 6.0 §2 and BigTIFF: byte order, then 42 (classic) or 43 (BigTIFF).
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def open_source(sources: Sequence[Path], limits: SlideLimits = DEFAULT_LIMITS) -> SourceSlide:
    """Open a single TIFF-family file or the files of a DICOM series (or some of its levels)."""
    if not sources:
        raise UnsupportedFormatError("no source file")
    heads = []
    for path in sources:
        with path.open("rb") as fh:
            heads.append(fh.read(DICOM_PREAMBLE_BYTES + 4))
    if all(is_dicom_head(head) for head in heads):
        from slidestream_wsi.pyramid.dicom import open_dicom  # pydicom: only DICOM needs it

        return open_dicom(sources, limits)
    if len(sources) != 1:
        raise UnsupportedFormatError("several source files that are not a DICOM series")
    if heads[0][:4] not in _TIFF_MAGICS:
        raise UnsupportedFormatError("source is neither TIFF nor DICOM")
    from slidestream_wsi.pyramid.tiff import open_tiff

    return open_tiff(sources[0], limits)

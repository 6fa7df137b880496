"""What a slide says about itself (format, vendor, scanner model, spacing, objective power),
read from its directories and headers alone: no level is checked and no tile is read.

It is the reader's own rule (:mod:`~.spacing`) over the same main series :func:`~.tiff.open_tiff`
opens, for the callers that describe a slide without reading its pixels: de-identification
reports it in its event from an output whose tiles it never wrote (a sparse file holding only
the directories), and accepts slides conversion refuses (16-bit, planar), which still have a
spacing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import tifffile

from slidestream_wsi.detect import (
    DICOM_PREAMBLE_BYTES,
    SCANNER_VENDOR,
    SlideFormat,
    is_dicom_head,
    tiff_vendor_format,
)
from slidestream_wsi.errors import SlideError, UnsupportedFormatError
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.pyramid.scanner import dicom_scanner_model, tiff_scanner_model
from slidestream_wsi.pyramid.spacing import Mpp, dicom_objective_power, dicom_spacing, tiff_spacing
from slidestream_wsi.pyramid.tiff import main_series, ndpi_offsets


@dataclass(frozen=True, slots=True)
class SlideDescription:
    format: SlideFormat
    vendor: str | None
    """OpenSlide's spelling (:data:`~slidestream_wsi.detect.SCANNER_VENDOR`)."""
    mpp: Mpp | None
    """Level-0 microns per pixel (x, y), ``None`` when the file states none plausibly."""
    objective_power: float | None
    scanner_model: str | None = None
    """The scanner's model where the file states it (:mod:`~.scanner`: bounded, printable)."""


def describe_slide(path: Path, limits: SlideLimits = DEFAULT_LIMITS) -> SlideDescription:
    """Describe a TIFF-family file or one DICOM WSI instance; raise a :class:`SlideError`
    subclass when it is neither or does not parse."""
    with path.open("rb") as fh:
        head = fh.read(DICOM_PREAMBLE_BYTES + 4)
    if is_dicom_head(head):
        return _describe_dicom(path, limits)
    return _describe_tiff(path)


def _describe_tiff(path: Path) -> SlideDescription:
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        with tifffile.TiffFile(path, is_ndpi=ndpi_offsets(path)) as tif:
            fmt = tiff_vendor_format(tif.pages.first) or SlideFormat.GENERIC_TIFF
            level0 = main_series(tif).levels[0].keyframe
            if not isinstance(level0, tifffile.TiffPage):
                raise UnsupportedFormatError("pyramid level is not a plain TIFF page")
            mpp, power = tiff_spacing(tif, level0)
            model = tiff_scanner_model(tif, level0, fmt)
    except SlideError:
        raise
    except Exception as exc:  # tifffile raises many types on malformed files
        raise UnsupportedFormatError("TIFF that tifffile cannot parse") from exc
    return SlideDescription(fmt, SCANNER_VENDOR.get(fmt), mpp, power, model)


def _describe_dicom(path: Path, limits: SlideLimits) -> SlideDescription:
    from slidestream_wsi.dicom.pixeldata import read_dicom_header  # pydicom: DICOM only

    dataset = read_dicom_header(path, limits).dataset
    fmt = SlideFormat.DICOM_WSI
    return SlideDescription(
        fmt,
        SCANNER_VENDOR[fmt],
        dicom_spacing(dataset),
        dicom_objective_power(dataset),
        dicom_scanner_model(dataset),
    )

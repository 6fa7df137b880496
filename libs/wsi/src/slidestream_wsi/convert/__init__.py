"""Conversion of a de-identified slide to DICOM WSI and pyramidal OME-TIFF, lossless first.

See :mod:`slidestream_wsi.convert.pipeline` for the flow, :mod:`~.plan` for the copy /
re-encode / generate policy, :mod:`~.dicom_out` and :mod:`~.tiff_out` for the two containers
and :mod:`~.verify` for the conformance gate.
"""

from slidestream_wsi.convert.model import (
    ConversionOptions,
    ConversionResult,
    ConvertedLevelReport,
    DicomIdentity,
    OutputFormat,
    VerifyMode,
)
from slidestream_wsi.convert.pipeline import convert_slide

__all__ = [
    "ConversionOptions",
    "ConversionResult",
    "ConvertedLevelReport",
    "DicomIdentity",
    "OutputFormat",
    "VerifyMode",
    "convert_slide",
]

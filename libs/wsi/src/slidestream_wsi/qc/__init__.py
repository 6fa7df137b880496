"""Slide quality control, pure: measures on low-resolution levels and on tissue only.

``levels_needed(levels)`` says from level metadata which levels to fetch; ``open_tiff_pyramid`` /
``open_dicom_pyramid`` read them counting bytes; ``run_qc(source, thresholds)`` returns the
versioned :class:`QcReport` (JSON Schema: :func:`report_json_schema`) and :class:`QcPictures`.
"""

from slidestream_wsi.qc.levels import choose_levels, levels_needed
from slidestream_wsi.qc.pictures import (
    HEATMAP_PNG,
    MASKS_PNG,
    OVERLAY_PNG,
    TISSUE_MASK_PNG,
    QcPictures,
    summary_html,
)
from slidestream_wsi.qc.pyramid import (
    PyramidLevel,
    PyramidSource,
    SlidePyramid,
    open_dicom_pyramid,
    open_tiff_pyramid,
    read_dicom_levels,
)
from slidestream_wsi.qc.report import (
    SCHEMA_VERSION,
    QcMeasureResult,
    QcReport,
    report_json_schema,
    write_report_schema,
)
from slidestream_wsi.qc.run import MEASURES, run_qc
from slidestream_wsi.qc.thresholds import QcGrade, QcThresholds

__all__ = [
    "HEATMAP_PNG",
    "MASKS_PNG",
    "MEASURES",
    "OVERLAY_PNG",
    "SCHEMA_VERSION",
    "TISSUE_MASK_PNG",
    "PyramidLevel",
    "PyramidSource",
    "QcGrade",
    "QcMeasureResult",
    "QcPictures",
    "QcReport",
    "QcThresholds",
    "SlidePyramid",
    "choose_levels",
    "levels_needed",
    "open_dicom_pyramid",
    "open_tiff_pyramid",
    "read_dicom_levels",
    "report_json_schema",
    "run_qc",
    "summary_html",
    "write_report_schema",
]

"""The slide work behind a Protocol: open the downloaded levels and run the QC measures.

The implementation is :mod:`slidestream_wsi.qc` (measures on low-resolution levels, tissue only;
report and pictures). Tests may substitute a failing or scripted runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from slidestream_wsi.qc import (
    PyramidLevel,
    QcReport,
    QcThresholds,
    levels_needed,
    open_dicom_pyramid,
    open_tiff_pyramid,
    run_qc,
    summary_html,
)
from slidestream_wsi.qc.report import QcMeasureResult


@dataclass(frozen=True, slots=True)
class QcOutcome:
    report: QcReport
    pictures: Mapping[str, bytes]
    """File name (``overlay.png``, ``report.html``…) → bytes, written next to the report."""


def with_measure(outcome: QcOutcome, result: QcMeasureResult, reason: str) -> QcOutcome:
    """The outcome with one more measure in its report, and the HTML summary drawn again."""
    report = outcome.report.with_measure(result, reason)
    pictures = dict(outcome.pictures)
    if "report.html" in pictures:
        pictures["report.html"] = summary_html(report).encode()
    return QcOutcome(report, pictures)


class QcRunner(Protocol):
    def levels_needed(self, levels: Sequence[PyramidLevel]) -> tuple[int, ...]: ...

    def run_dicom(
        self,
        level_files: Sequence[Path],
        all_levels: Sequence[PyramidLevel],
        total_bytes: int,
        thresholds: QcThresholds,
        label: str,
    ) -> QcOutcome: ...

    def run_tiff(self, path: Path, thresholds: QcThresholds, label: str) -> QcOutcome: ...


class WsiQcRunner:
    def levels_needed(self, levels: Sequence[PyramidLevel]) -> tuple[int, ...]:
        return levels_needed(levels)

    def run_dicom(
        self,
        level_files: Sequence[Path],
        all_levels: Sequence[PyramidLevel],
        total_bytes: int,
        thresholds: QcThresholds,
        label: str,
    ) -> QcOutcome:
        with open_dicom_pyramid(level_files, total_bytes, all_levels) as source:
            report, pictures = run_qc(source, thresholds, slide_label=label)
        return QcOutcome(report, pictures.files())

    def run_tiff(self, path: Path, thresholds: QcThresholds, label: str) -> QcOutcome:
        with open_tiff_pyramid(path) as source:
            report, pictures = run_qc(source, thresholds, slide_label=label)
        return QcOutcome(report, pictures.files())

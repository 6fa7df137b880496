"""Planted QC cases: a generated slide, its truth, and what QC made of it (the QC tests' shared
helpers; the slides and their artefacts come from slidestream_samples)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_samples.painting import SyntheticSlide
from slidestream_wsi.qc import QcPictures, QcReport
from slidestream_wsi.qc.analysis import Analysis

BLUR_TOLERANCE = 0.10
"""Blurred fraction of tissue: ± 10 points (the issue's tolerance)."""


@dataclass
class QcCase:
    slide: SyntheticSlide
    path: Path
    report: QcReport
    pictures: QcPictures
    analysis: Analysis

    def truth_at_analysis(self, name: str) -> npt.NDArray[np.bool_]:
        """A level-0 truth mask brought to the analysis level (area-weighted, majority)."""
        mask = self.slide.truth[name] if name != "tissue" else self.slide.tissue
        height, width = self.analysis.tissue.shape
        small = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
        return small >= 0.5

    def value(self, name: str) -> float:
        return self.report.measure(name).value


def iou(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0

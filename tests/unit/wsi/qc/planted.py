"""Planted QC cases: a generated slide, its truth, and what QC made of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_wsi.qc import QcPictures, QcReport
from slidestream_wsi.qc import synthetic as synth
from slidestream_wsi.qc.analysis import Analysis


@dataclass
class QcCase:
    slide: synth.SyntheticSlide
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


PLANTS: dict[str, Callable[[synth.SyntheticSlide], None]] = {
    "clean": lambda s: None,
    "blur30": lambda s: synth.plant_blur(s, 0.30),
    "blur60": lambda s: synth.plant_blur(s, 0.60),
    "pen_blue": lambda s: synth.plant_pen(s, "blue"),
    "pen_green": lambda s: synth.plant_pen(s, "green", seed=2),
    "pen_black": lambda s: synth.plant_pen(s, "black", seed=3),
    "pen_red": lambda s: synth.plant_pen(s, "red", seed=4),
    "fold": synth.plant_fold,
    "bubble": synth.plant_bubble,
    "edge": synth.plant_coverslip_edge,
    "dark_spots": synth.plant_dark_spots,
    "over": lambda s: synth.plant_exposure(s, 1.35),
    "under": lambda s: synth.plant_exposure(s, 0.55),
    "vignetting": synth.plant_vignetting,
}

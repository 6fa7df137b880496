"""The analysis level (about 1.25x-2.5x, decoded whole), segmented then measured.

Each mask is a boolean array the size of the working image. Sizes are given in micrometres and
square millimetres and turned into pixels with the level's spacing, so the same thresholds hold
for every scanner. The methods are the classical ones HistoQC and GrandQC are compared against:
:mod:`~.segment` finds glass, tissue, ink and dark spots, :mod:`~.artefacts` bubbles and
coverslip edges, :mod:`~.measure` areas, glass, folds and colour, :mod:`~.stain` the stain.
"""

from __future__ import annotations

from dataclasses import dataclass

from slidestream_wsi.qc.artefacts import CoverslipEdge
from slidestream_wsi.qc.masks import BoolMask, UInt8Image
from slidestream_wsi.qc.measure import Measurement, Measures, measure
from slidestream_wsi.qc.segment import Segmentation, segment
from slidestream_wsi.qc.stain import RUIFROK_EOSIN, RUIFROK_HEMATOXYLIN, StainVector

__all__ = [
    # The stain references, imported from here by the synthetic slides.
    "RUIFROK_EOSIN",
    "RUIFROK_HEMATOXYLIN",
    "Analysis",
    "analyse",
]


@dataclass(frozen=True, slots=True)
class Analysis:
    """The masks and measures of the analysis level, all the size of :attr:`image`."""

    segmentation: Segmentation
    measurement: Measurement

    @property
    def image(self) -> UInt8Image:
        return self.segmentation.image

    @property
    def tissue(self) -> BoolMask:
        return self.segmentation.tissue

    @property
    def pen(self) -> dict[str, BoolMask]:
        return self.segmentation.pen

    @property
    def pen_any(self) -> BoolMask:
        return self.segmentation.pen_any

    @property
    def bubble(self) -> BoolMask:
        return self.segmentation.bubble

    @property
    def coverslip_edges(self) -> list[CoverslipEdge]:
        return self.segmentation.coverslip_edges

    @property
    def fold(self) -> BoolMask:
        return self.measurement.fold

    @property
    def dark_spot(self) -> BoolMask:
        return self.measurement.dark_spot

    @property
    def measures(self) -> Measures:
        return self.measurement.measures

    @property
    def stain_vectors(self) -> tuple[StainVector, StainVector] | None:
        return self.measurement.stain_vectors

    @property
    def notes(self) -> tuple[str, ...]:
        return self.measurement.notes


def analyse(rgb: UInt8Image, mpp_um: float) -> Analysis:
    """Segment and measure the analysis level ``rgb`` whose spacing is ``mpp_um`` µm/px."""
    segmentation = segment(rgb, mpp_um)
    return Analysis(segmentation, measure(segmentation, rgb))

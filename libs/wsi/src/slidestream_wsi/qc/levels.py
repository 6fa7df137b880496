"""Which pyramid levels QC reads, decided from level metadata alone (sizes and pixel spacing).

The service calls :func:`levels_needed` before downloading, so it fetches only those DICOM
instances. Two levels at most:

* the *analysis* level, decoded whole: tissue, ink, folds, bubbles, colour and stain. HistoQC
  works at 1.25x (about 8 µm/px); we take the coarsest level at or finer than
  :data:`ANALYSIS_TARGET_MPP` that still has :data:`ANALYSIS_MIN_LONG_SIDE_PX` pixels on its
  long side, so a small biopsy keeps enough pixels, and never one over
  :data:`~slidestream_wsi.qc.pyramid.MAX_WHOLE_LEVEL_PIXELS`;
* the *focus* level, read tile by tile over sampled tissue only: the coarsest level at or finer
  than 1 µm/px (10x), where a 2 µm defocus spans two pixels (at HistoQC's 5x it is one, and
  vanishes); the finest level there is when the scan itself is coarser.

Level 0 of a whole slide is never chosen for whole-level decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slidestream_wsi.errors import PyramidLevelError
from slidestream_wsi.qc.pyramid import MAX_WHOLE_LEVEL_PIXELS, PyramidLevel

ANALYSIS_TARGET_MPP = 8.0
"""µm/px of the analysis level (1.25x, HistoQC's working magnification)."""
ANALYSIS_MIN_LONG_SIDE_PX = 1024
"""Fewest pixels on the analysis level's long side (a 1 mm ink stroke is 125 px at 8 µm/px)."""
FOCUS_TARGET_MPP = 1.0
"""µm/px focus is scored at (10x): nuclei are 5-10 px across, chromatin and membranes 1-2 px,
so a defocus of σ = 2 µm removes detail a 5x level does not hold."""
FOCUS_MPP_SLACK = 1.1
"""A level up to 10 % coarser than :data:`FOCUS_TARGET_MPP` still counts (scanners round)."""
ASSUMED_LEVEL0_MPP = 0.25
"""µm/px assumed for level 0 when the file gives no spacing (a 40x scan, the common case)."""


@dataclass(frozen=True, slots=True)
class LevelChoice:
    analysis: PyramidLevel
    focus: PyramidLevel

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(sorted({self.analysis.index, self.focus.index}))


def level_mpp(level: PyramidLevel) -> float:
    """The level's spacing in µm/px: the mean of x and y, or assumed from the downsample."""
    if level.mpp_x and level.mpp_y:
        return (level.mpp_x + level.mpp_y) / 2
    known = level.mpp_x or level.mpp_y
    if known:
        return float(known)
    return ASSUMED_LEVEL0_MPP * level.downsample


def choose_levels(levels: Sequence[PyramidLevel]) -> LevelChoice:
    if not levels:
        raise PyramidLevelError("the pyramid has no level")
    # Whole-level decoding: small enough, and not the full-resolution level (downsample 1)
    # unless that level is itself thumbnail-sized (a single-level small image).
    decodable = [
        level
        for level in levels
        if level.pixels <= MAX_WHOLE_LEVEL_PIXELS
        and (level.downsample > 1.0 or max(level.width_px, level.height_px) <= 8192)
    ]
    if not decodable:
        raise PyramidLevelError("no pyramid level is small enough for QC to decode whole")
    fine_enough = [
        level
        for level in decodable
        if level_mpp(level) <= ANALYSIS_TARGET_MPP * 1.01
        and max(level.width_px, level.height_px) >= ANALYSIS_MIN_LONG_SIDE_PX
    ]
    if fine_enough:
        analysis = max(fine_enough, key=level_mpp)
    else:
        analysis = max(decodable, key=lambda level: level.pixels)
    fine = [level for level in levels if level_mpp(level) <= FOCUS_TARGET_MPP * FOCUS_MPP_SLACK]
    if fine:
        focus = max(fine, key=lambda level: (level_mpp(level), -level.pixels))
    else:
        focus = min(levels, key=lambda level: (level_mpp(level), level.pixels))
    # The focus level is never coarser than the analysis level: blur is judged at least at
    # the resolution the tissue mask has.
    if level_mpp(focus) > level_mpp(analysis):
        focus = analysis
    return LevelChoice(analysis, focus)


def levels_needed(levels: Sequence[PyramidLevel]) -> tuple[int, ...]:
    """Indices of the levels :func:`~slidestream_wsi.qc.run.run_qc` will read, from metadata."""
    return choose_levels(levels).indices

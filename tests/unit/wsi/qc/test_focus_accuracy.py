"""Graded defocus measured within ±5 points at every slide size, strength and share.

Slides are the QC benchmark's (:mod:`slidestream_samples.qc_bench`: a 40x pyramidal TIFF whose
left ``share`` of tissue is defocused, sensor noise after the blur), at three sizes: small
(16 384 x 12 288 px, about 70 tissue tiles at 10x), medium (32 768 x 24 576) and full (50 000 x
40 000, the benchmark's). Each is written, judged by ``run_qc`` as the service does, and deleted.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from slidestream_samples.qc_bench import (
    TILE_PX,
    DefocusKind,
    planted_truth,
    tissue_map,
    write_slide,
)
from slidestream_wsi.qc import QcReport, open_tiff_pyramid, run_qc

SIZES = {"small": (16_384, 12_288), "medium": (32_768, 24_576), "full": (50_000, 40_000)}
DEFOCUS_UM = (1.0, 2.0, 4.0, 8.0)
SHARES = (0.1, 0.4)
TOLERANCE = 0.05
"""± 5 points of the tissue, where the defocus is at least 2 µm (the issue's goal)."""
NO_BLUR_MAX = 0.03
MOTION_STREAK_UM = 10.0


def judged(
    tmp_path: Path, size: str, share: float, defocus_um: float, kind: DefocusKind = "gaussian"
) -> tuple[float, QcReport]:
    width, height = SIZES[size]
    path = tmp_path / f"{size}-{kind}-{defocus_um}-{share}.tif"
    write_slide(
        path, width, height, defocused_share=share, defocus_um=defocus_um, defocus_kind=kind
    )
    try:
        with open_tiff_pyramid(path) as source:
            report, _ = run_qc(source)
    finally:
        path.unlink()
    grid = (math.ceil(width / TILE_PX), math.ceil(height / TILE_PX))
    kinds = tissue_map(*grid, defocused_share=share)
    return planted_truth(kinds)["blur_fraction"], report


def _check(truth: float, report: QcReport) -> None:
    focus = report.focus
    assert focus is not None
    assert report.measure("blur_fraction").value == focus.blurred_fraction
    assert focus.blurred_fraction == pytest.approx(truth, abs=TOLERANCE)
    assert focus.ci95_low <= focus.blurred_fraction <= focus.ci95_high
    # The 95 % interval is as wide as the rule promises at most.
    assert focus.ci95_high - focus.ci95_low <= 2 * 0.02 + 1e-9
    assert focus.mpp == pytest.approx(1.0)


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("defocus_um", DEFOCUS_UM)
@pytest.mark.parametrize("size", list(SIZES))
def test_graded_defocus_within_five_points(
    tmp_path: Path, size: str, defocus_um: float, share: float
) -> None:
    truth, report = judged(tmp_path, size, share, defocus_um)
    assert 0.05 < truth < 0.45
    _check(truth, report)


@pytest.mark.parametrize("size", list(SIZES))
def test_a_slide_without_blur_reports_under_three_percent(tmp_path: Path, size: str) -> None:
    truth, report = judged(tmp_path, size, 0.0, 4.0)
    assert truth == 0.0
    assert report.focus is not None
    assert report.focus.blurred_fraction < NO_BLUR_MAX
    assert report.measure("blur_fraction").verdict == "pass"


@pytest.mark.parametrize("size", list(SIZES))
def test_a_streak_along_the_scan_axis_is_measured(tmp_path: Path, size: str) -> None:
    truth, report = judged(tmp_path, size, 0.4, MOTION_STREAK_UM, "motion")
    _check(truth, report)


def test_bytes_read_stay_under_a_tenth_of_the_full_slide(tmp_path: Path) -> None:
    _, report = judged(tmp_path, "full", 0.4, 2.0)
    assert report.read_fraction < 0.10
    assert report.focus is not None
    assert report.focus.tiles_scored < report.focus.tissue_tiles

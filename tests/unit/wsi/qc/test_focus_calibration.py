"""The defocus calibration table and the limits in ``slidestream_wsi.qc.focus`` hold on the
generator's H&E tissue, re-measured here patch by patch (:mod:`tests.support.focus_calibration`)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from slidestream_wsi.qc.focus import (
    ANISOTROPY_MIN,
    DEFAULT_DEFOCUS_SIGMA_UM,
    DEFOCUS_CALIBRATION,
    score_min_for,
)
from slidestream_wsi.qc.thresholds import QcThresholds
from tests.support.focus_calibration import patch_anisotropies, patch_energies

MEDIAN_TOLERANCE = 0.2
"""Relative: the table's medians against a fresh measurement of the same tiles' painting."""
MOTION_STREAK_UM = 10.0


@pytest.mark.parametrize(("sigma_um", "median"), DEFOCUS_CALIBRATION)
def test_calibration_medians_hold(sigma_um: float, median: float) -> None:
    assert float(np.median(patch_energies(sigma_um))) == pytest.approx(median, rel=MEDIAN_TOLERANCE)


def test_default_limit_separates_sharp_from_a_micrometre_of_defocus() -> None:
    score_min = score_min_for(DEFAULT_DEFOCUS_SIGMA_UM)
    assert float(patch_energies(0.0).min()) > score_min
    for sigma_um in (1.0, 2.0, 4.0, 8.0):
        assert float(patch_energies(sigma_um).max()) < score_min, sigma_um
    assert QcThresholds().blur_defocus_sigma_um == DEFAULT_DEFOCUS_SIGMA_UM


def test_a_streak_along_the_scan_axis_is_caught_by_its_anisotropy() -> None:
    assert float(patch_anisotropies(0.0).min()) > ANISOTROPY_MIN
    assert float(patch_anisotropies(MOTION_STREAK_UM, "motion").max()) < ANISOTROPY_MIN
    for sigma_um in (1.0, 2.0, 4.0, 8.0):  # isotropic blur keeps its directions balanced
        assert float(patch_anisotropies(sigma_um).min()) > ANISOTROPY_MIN


def test_score_limit_follows_the_table_and_falls_with_defocus() -> None:
    for sigma_um, median in DEFOCUS_CALIBRATION:
        assert score_min_for(sigma_um) == pytest.approx(median)
    sigmas = np.linspace(0.0, 4.0, 41)
    limits = [score_min_for(float(sigma)) for sigma in sigmas]
    assert all(a > b for a, b in itertools.pairwise(limits) if a != b)
    assert score_min_for(10.0) == pytest.approx(DEFOCUS_CALIBRATION[-1][1])

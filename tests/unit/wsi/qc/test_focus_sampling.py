"""The focus sample's size rule, its spread over the section and its confidence interval."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from slidestream_wsi.qc.focus_sampling import (
    hilbert_index,
    ratio_estimate,
    sample_size,
    spread_sample,
)


def test_sample_size_rule() -> None:
    assert sample_size(0) == 0
    assert sample_size(1) == 1
    assert sample_size(50) == 49  # small sections: nearly every tile
    assert sample_size(100) == 97
    assert sample_size(700) == 543
    assert sample_size(10**7) == 2401  # (1.96 * 0.5 / 0.02)**2
    sizes = [sample_size(n) for n in range(1, 5000, 7)]
    assert sizes == sorted(sizes)


def test_hilbert_order_visits_every_cell_once_by_neighbours() -> None:
    for order in (1, 3, 5):
        side = 2**order
        cells = [(row, column) for row in range(side) for column in range(side)]
        along = sorted(cells, key=lambda cell: hilbert_index(cell[0], cell[1], order))
        assert sorted(hilbert_index(r, c, order) for r, c in cells) == list(range(side * side))
        steps = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in itertools.pairwise(along)]
        assert set(steps) == {1}


def test_spread_sample_covers_left_and_right_whatever_the_row_length() -> None:
    # Rows of 14 cells and a step near 14: a raster lattice would take one column band.
    cells = [(row, column) for row in range(8) for column in range(14)]
    chosen = spread_sample(cells, 8)
    assert len(chosen) == 8 and chosen == sorted(chosen)
    columns = [column for _, column in chosen]
    assert min(columns) < 4 and max(columns) >= 10
    assert spread_sample(cells, 500) == cells


def test_census_has_no_sampling_error() -> None:
    tissue = np.ones(40)
    blurred = np.r_[np.ones(10), np.zeros(30)]
    estimate = ratio_estimate(tissue, blurred, population=40)
    assert estimate.share == estimate.low == estimate.high == pytest.approx(0.25)


def test_interval_covers_the_truth_at_its_confidence() -> None:
    rng = np.random.default_rng(17)
    population = 600
    tissue = rng.uniform(0.3, 1.0, population)
    blurred = tissue * (rng.random(population) < 0.3)
    truth = blurred.sum() / tissue.sum()
    covered = 0
    trials = 400
    for _ in range(trials):
        picked = rng.choice(population, 60, replace=False)
        estimate = ratio_estimate(tissue[picked], blurred[picked], population)
        assert estimate.low <= estimate.share <= estimate.high
        covered += estimate.low <= truth <= estimate.high
    assert covered / trials >= 0.9

"""How many tissue tiles focus is scored on, and the confidence interval of the blurred share.

The sampling unit is a tile of the focus level holding tissue (``N`` of them). The blurred share
of tissue is a ratio estimate over the ``n`` tiles scored: ``p = Σ b_i / Σ a_i`` with ``a_i``
the tissue area scored in tile ``i`` and ``b_i`` its blurred part (Cochran, *Sampling
Techniques*, 3rd ed., §6.2-6.4).

**The rule.** ``n`` is the size that bounds the 95 % confidence half-width of a proportion by
:data:`SAMPLING_ERROR_MAX` in the worst case (p = 0.5), with the finite-population correction:
``n0 = (1.96 · 0.5 / 0.02)² = 2401`` and ``n = ⌈n0 / (1 + (n0 - 1) / N)⌉``: a small section
is scored nearly whole (49 of 50 tiles, 97 of 100), the QC benchmark's full slide on 523 of
its 667, and no section needs more than 2401 tiles (157 mm² of tissue at 1 µm/px).

**The spread.** The tiles are a regular lattice over the candidates ordered along a Hilbert
curve (systematic sampling along a space-filling curve): every part of the section gets
its share, and no lattice step can line up with the rows as it can in raster order (where a
step near a row's length samples one column band). Such a sample is at least as precise as a
simple random one when blur lies in contiguous regions, as defocus does, so the interval
computed as for a random sample is conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

CONFIDENCE_Z: Final = 1.96
"""Normal quantile of a two-sided 95 % interval."""
SAMPLING_ERROR_MAX: Final = 0.02
"""Largest 95 % half-width of the blurred share the sample is sized for (2 points)."""
WORST_CASE_SHARE: Final = 0.5


def sample_size(candidates: int) -> int:
    """Tiles to score out of ``candidates`` tissue tiles (the rule in the module docstring)."""
    if candidates <= 0:
        return 0
    infinite = math.ceil((CONFIDENCE_Z * WORST_CASE_SHARE / SAMPLING_ERROR_MAX) ** 2)
    return min(candidates, math.ceil(infinite / (1 + (infinite - 1) / candidates)))


def lattice(count: int, keep: int) -> list[int]:
    """``keep`` indices spread evenly over ``range(count)``."""
    if count <= keep:
        return list(range(count))
    step = count / keep
    return sorted({int(i * step) for i in range(keep)})


def hilbert_index(row: int, column: int, order: int) -> int:
    """Position of cell (row, column) along the Hilbert curve over a 2**order square grid."""
    index = 0
    x, y = column, row
    side = 1 << (order - 1) if order > 0 else 0
    while side > 0:
        right = 1 if x & side else 0
        up = 1 if y & side else 0
        index += side * side * ((3 * right) ^ up)
        if up == 0:  # rotate the quadrant so the curve stays continuous
            if right == 1:
                x, y = side - 1 - x, side - 1 - y
            x, y = y, x
        x &= side - 1
        y &= side - 1
        side >>= 1
    return index


def spread_sample(cells: list[tuple[int, int]], keep: int) -> list[tuple[int, int]]:
    """``keep`` of the (row, column) ``cells``: a lattice along their Hilbert order, returned in
    raster order (the order tiles lie in the file)."""
    if keep >= len(cells):
        return list(cells)
    extent = max(max(row for row, _ in cells), max(column for _, column in cells)) + 1
    order = max(1, math.ceil(math.log2(extent)))
    along = sorted(cells, key=lambda cell: hilbert_index(cell[0], cell[1], order))
    return sorted(along[i] for i in lattice(len(along), keep))


@dataclass(frozen=True, slots=True)
class ShareEstimate:
    share: float
    """Blurred share of the tissue scored, 0-1."""
    low: float
    """Lower end of the 95 % confidence interval, 0-1."""
    high: float
    units_scored: int
    units_total: int


def ratio_estimate(
    tissue: npt.NDArray[np.float64], blurred: npt.NDArray[np.float64], population: int
) -> ShareEstimate:
    """The blurred share and its 95 % interval from per-tile tissue and blurred areas.

    Variance of the ratio estimator under sampling without replacement (Cochran eq. 6.13):
    ``(1 - n/N) / (n · ā²) · Σ (b_i - p a_i)² / (n - 1)``; zero when every tile was scored.
    """
    count = int(tissue.size)
    total = float(tissue.sum())
    if count == 0 or total <= 0:
        return ShareEstimate(0.0, 0.0, 0.0, count, population)
    share = float(blurred.sum()) / total
    if count < 2 or count >= population:
        return ShareEstimate(share, share, share, count, population)
    residuals = blurred - share * tissue
    mean_tissue = total / count
    variance = (
        (1 - count / population)
        * float((residuals**2).sum())
        / (count - 1)
        / (count * mean_tissue**2)
    )
    half = CONFIDENCE_Z * math.sqrt(max(variance, 0.0))
    return ShareEstimate(share, max(0.0, share - half), min(1.0, share + half), count, population)

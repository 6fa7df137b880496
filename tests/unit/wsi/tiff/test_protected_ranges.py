"""Protected ranges: the merged arrays answer exactly what a byte-by-byte set would."""

from __future__ import annotations

import numpy as np

from slidestream_wsi.tiff.patch import ProtectedRanges


def _bytes_of(pieces: list[tuple[int, int]]) -> set[int]:
    return {offset for start, end in pieces for offset in range(start, end)}


def test_overlaps_and_subtract_match_a_byte_set() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        starts = rng.integers(0, 400, size=rng.integers(0, 12))
        lengths = rng.integers(-3, 40, size=starts.size)  # empty and reversed ranges too
        protected = ProtectedRanges(starts, starts + lengths)
        covered = _bytes_of([(int(s), int(s + n)) for s, n in zip(starts, lengths, strict=True)])
        for _ in range(20):
            start = int(rng.integers(0, 450))
            end = start + int(rng.integers(1, 60))
            asked = set(range(start, end))
            assert protected.overlaps(start, end) == bool(asked & covered)
            pieces = protected.subtract(start, end)
            assert _bytes_of(pieces) == asked - covered
            # Pieces come sorted, disjoint and non-empty.
            assert all(a < b for a, b in pieces)
            assert all(pieces[i][1] < pieces[i + 1][0] for i in range(len(pieces) - 1))


def test_touching_ranges_merge_and_nothing_protected_protects_nothing() -> None:
    touching = ProtectedRanges.of([(10, 20), (20, 30), (0, 5)])
    assert touching.subtract(0, 40) == [(5, 10), (30, 40)]
    nothing = ProtectedRanges([], [])
    assert not nothing.overlaps(0, 100)
    assert nothing.subtract(3, 9) == [(3, 9)]

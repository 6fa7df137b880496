"""A pyramid as an event describes it: the same geometry the reader gives the opened files."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from slidestream_wsi.pyramid import choose_level, described_geometry


@dataclass(frozen=True)
class Described:
    index: int
    width_px: int
    height_px: int
    tile_size_px: int
    mpp_x: float | None
    mpp_y: float | None


def test_levels_come_in_index_order_with_downsamples_from_the_widest() -> None:
    levels = described_geometry(
        [
            Described(2, 250, 200, 256, 2.0, 2.0),
            Described(0, 1000, 800, 256, 0.5, 0.5),
            Described(1, 500, 400, 256, 1.0, 1.0),
        ]
    )
    assert [level.index for level in levels] == [0, 1, 2]
    assert [level.downsample for level in levels] == [1.0, 2.0, 4.0]
    assert (levels[1].tile_width_px, levels[1].tile_height_px) == (256, 256)
    # The coarsest level at least as fine as asked: 1 µm/px for a model trained at 1.5.
    assert choose_level(levels, 1.5).index == 1
    assert described_geometry([]) == ()


def test_a_level_without_spacing_keeps_none() -> None:
    [level] = described_geometry([Described(0, 64, 64, 64, None, None)])
    assert level.mpp_x is None
    with pytest.raises(ValueError, match="no pixel spacing"):
        choose_level((level,), 1.0)

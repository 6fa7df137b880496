"""The blur heat map colours exactly the patches the blurred share was computed from."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from slidestream_wsi.qc import open_tiff_pyramid
from slidestream_wsi.qc.focus import measure_focus
from slidestream_wsi.qc.levels import choose_levels
from slidestream_wsi.qc.pictures import draw_heatmap, draw_layers
from slidestream_wsi.qc.run import focus_tile_reader
from tests.support.qc import QcCase

SAMPLED_TILES = 8


def test_only_scored_patches_are_coloured(qc_case: Callable[[str], QcCase]) -> None:
    case = qc_case("blur30")
    with open_tiff_pyramid(case.path) as source:
        choice = choose_levels(source.levels)
        rgb = source.read_level(choice.analysis.index)
        focus = measure_focus(
            case.analysis.tissue,
            choice.focus,
            focus_tile_reader(source, choice, rgb),
            tiles_to_score=lambda _count: SAMPLED_TILES,
        )
    layers = draw_layers(case.analysis)
    plain = draw_heatmap(layers, None)
    heat = draw_heatmap(layers, focus)
    height, width = plain.shape[:2]
    scored = ~np.isnan(focus.scores)
    footprint = cv2.resize(
        scored.astype(np.uint8),
        focus.grid_size_px((width, height)),
        interpolation=cv2.INTER_NEAREST,
    )[:height, :width].astype(bool)
    coloured = (heat != plain).any(axis=2)
    assert coloured.any()
    assert not (coloured[: footprint.shape[0], : footprint.shape[1]] & ~footprint).any()
    assert (
        not coloured[footprint.shape[0] :, :].any() and not coloured[:, footprint.shape[1] :].any()
    )
    # Unscored tissue stays as it was: far more tissue than the 8 tiles' patches.
    assert layers.tissue.sum() > 2 * (coloured & layers.tissue).sum()
    # Red where the share counts blurred patches, green where sharp.
    red = coloured & (heat[..., 0].astype(int) > heat[..., 1].astype(int))
    blurred_patches = int((focus.scores < 1).sum())
    assert (red.any()) == (blurred_patches > 0)

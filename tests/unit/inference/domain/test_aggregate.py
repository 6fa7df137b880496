"""Aggregation of tile outputs: scores and embeddings at their plan positions, the summary, the
slide embedding, the heat map grid and its picture."""

from __future__ import annotations

import numpy as np
import pytest

from slidestream_inference.domain.aggregate import SlideOutputs, heat_grid
from slidestream_inference.domain.heatmaps import LEGEND_HEIGHT_PX, heatmap_png
from tests.support.inference import decode_png, model_card


def test_batches_land_at_their_positions_in_any_order() -> None:
    outputs = SlideOutputs(model_card(), 4)
    late = {
        "PROBS": np.array([[0.1, 0.9], [0.2, 0.8]], np.float32),
        "EMBED": np.array([[1, 2, 3], [3, 4, 5]], np.float32),
    }
    early = {
        "PROBS": np.array([[0.7, 0.3], [0.6, 0.4]], np.float32),
        "EMBED": np.array([[0, 0, 0], [0, 2, 4]], np.float32),
    }
    outputs.put(2, late)
    assert not outputs.complete
    outputs.put(0, early)
    assert outputs.complete
    assert outputs.scores is not None and outputs.embeddings is not None
    np.testing.assert_allclose(outputs.scores[:, 1], [0.3, 0.4, 0.9, 0.8])
    assert outputs.embeddings.dtype == np.float16 and outputs.embeddings.shape == (4, 3)
    slide = outputs.slide_embedding()
    assert slide is not None and slide.dtype == np.float32
    np.testing.assert_allclose(slide, [1, 2, 3])
    with pytest.raises(ValueError, match="put before"):
        outputs.put(1, early)


def test_summary_counts_winning_classes_and_keeps_mean_and_max() -> None:
    outputs = SlideOutputs(model_card(), 4)
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]], np.float32)
    outputs.put(0, {"PROBS": probs, "EMBED": np.zeros((4, 3), np.float32)})
    summary = outputs.summary()
    assert summary["fraction:dark"] == 0.5 and summary["fraction:light"] == 0.5
    assert summary["mean:light"] == pytest.approx(0.5)
    assert summary["max:light"] == pytest.approx(0.8)
    assert summary["max:dark"] == pytest.approx(0.9)


def test_no_tiles_no_summary_and_no_slide_embedding() -> None:
    outputs = SlideOutputs(model_card(), 0)
    assert outputs.complete and outputs.summary() == {} and outputs.slide_embedding() is None


def test_segmentation_scores_are_each_class_mean_over_the_tile() -> None:
    card = model_card(
        outputs=[
            {"name": "SEG", "kind": "segmentation", "width": 2, "labels": ["a", "b"], "size_px": 4}
        ]
    )
    maps = np.zeros((1, 2, 4, 4), np.float32)
    maps[0, 1, :2] = 1.0  # class b on the top half
    maps[0, 0, 2:] = 1.0
    outputs = SlideOutputs(card, 1)
    outputs.put(0, {"SEG": maps})
    assert outputs.labels == ("a", "b") and outputs.embeddings is None
    assert outputs.scores is not None
    np.testing.assert_allclose(outputs.scores, [[0.5, 0.5]])


def test_the_grid_has_a_cell_per_level0_tile_and_nan_where_none_ran() -> None:
    origins = np.array([[0, 0], [512, 256], [768, 512]], np.int64)
    grid = heat_grid(origins, np.array([0.1, 0.5, 0.9], np.float32), 256.0, (1000, 700))
    assert grid.shape == (3, 4)
    assert grid[0, 0] == pytest.approx(0.1) and grid[1, 2] == pytest.approx(0.5)
    assert grid[2, 3] == pytest.approx(0.9)
    assert int(np.isnan(grid).sum()) == 12 - 3


def test_the_heat_map_colours_analysed_tiles_and_leaves_the_rest_as_the_thumbnail() -> None:
    thumbnail = np.full((60, 80, 3), 200, np.uint8)
    grid = np.full((3, 4), np.nan, np.float32)
    grid[0, 0] = 1.0
    png = heatmap_png(thumbnail, grid, 1.0, "probability of tumour")
    picture = decode_png(png)
    # The thumbnail, then a strip with the colour scale and the caption.
    assert picture.shape == (60 + LEGEND_HEIGHT_PX, 80, 3)
    assert tuple(picture[59, 79]) == (200, 200, 200)
    strip = picture[60:]
    assert (strip == 255).all(axis=2).mean() > 0.5  # mostly white
    assert strip[:, 18:60, 2].max() > 200 and strip[:, 18:60, 0].min() < 100  # blue end of JET
    red, _, blue = picture[5, 5].astype(int)
    assert red > blue + 50  # JET at 1.0 is dark red, blended half and half with the grey

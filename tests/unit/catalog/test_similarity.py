"""Re-ranking and query geometry of similarity search (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from slidestream_catalog.domain.similarity import (
    Level,
    Ranked,
    Rectangle,
    RegionError,
    check_crop,
    crop_level,
    crop_url,
    rank_candidate,
    region_query,
    region_to_level0,
    tiles_in,
    top,
)

LEVELS = (Level(0, 8000, 6000), Level(1, 2000, 1500), Level(2, 500, 375))


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, np.float32)
    return vector / np.linalg.norm(vector)


def test_region_at_a_level_is_scaled_to_level_0() -> None:
    assert region_to_level0(100, 50, 20, 10, 1, LEVELS) == Rectangle(400, 200, 80, 40)


@pytest.mark.parametrize(("x", "level"), [(1990, 1), (0, 3)])
def test_region_outside_the_slide_or_level_is_refused(x: int, level: int) -> None:
    with pytest.raises(RegionError):
        region_to_level0(x, 0, 20, 10, level, LEVELS)


def test_tiles_overlapping_the_region() -> None:
    origins = np.array([[0, 0], [224, 0], [448, 0], [0, 224]], np.int64)

    inside = tiles_in(origins, 224, Rectangle(200, 10, 30, 30))

    assert list(inside) == [0, 1]


def test_region_query_is_the_normalised_mean_of_its_tiles() -> None:
    embeddings = np.stack([unit(1, 0), unit(0, 1), unit(-1, 0)])
    origins = np.array([[0, 0], [224, 0], [448, 0]], np.int64)

    query = region_query(embeddings, origins, 224, Rectangle(0, 0, 448, 10))

    assert query == pytest.approx(unit(1, 1))
    with pytest.raises(RegionError):
        region_query(embeddings, origins, 224, Rectangle(5000, 0, 10, 10))


def test_region_candidate_distance_is_its_best_tile() -> None:
    tiles = np.stack([unit(0, 1), unit(1, 0.1), unit(-1, 0)])
    origins = np.array([[0, 0], [224, 0], [448, 0]], np.int64)

    ranked = rank_candidate("s", unit(1, 0)[None, :], tiles, origins, 224, support_tiles=1)

    assert ranked is not None
    assert (ranked.x, ranked.y, ranked.size_px) == (224, 0, 224)
    assert ranked.distance == pytest.approx(1 - float(unit(1, 0.1)[0]), abs=1e-6)


def test_whole_slide_distance_is_the_median_of_minimum_distances() -> None:
    # Three query tiles: two match the candidate exactly, one matches nothing (distance 1).
    queries = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)])
    tiles = np.stack([unit(1, 0, 0), unit(0, 1, 0)])
    origins = np.array([[0, 0], [0, 224]], np.int64)

    ranked = rank_candidate("s", queries, tiles, origins, 224, support_tiles=1)

    assert ranked is not None
    assert ranked.distance == pytest.approx(0.0, abs=1e-6)


def test_one_stray_tile_does_not_make_a_match() -> None:
    query = unit(1, 0)[None, :]
    origins = np.zeros((6, 2), np.int64)
    mostly_other = np.stack([unit(1, 0)] + [unit(0, 1)] * 5)
    mostly_same = np.stack([unit(1, 0.05)] * 4 + [unit(0, 1)] * 2)

    stray = rank_candidate("stray", query, mostly_other, origins, 224)
    same = rank_candidate("same", query, mostly_same, origins, 224)

    assert stray is not None and same is not None
    assert stray.distance == pytest.approx(1.0, abs=1e-6)  # its 3rd-nearest tile is the other
    assert same.distance < 0.01
    assert top([stray, same], 1)[0].slide_id == "same"


def test_top_orders_by_distance_then_slide() -> None:
    items = [Ranked("b", 0, 0, 1, 0.2), None, Ranked("a", 0, 0, 1, 0.2), Ranked("c", 0, 0, 1, 0.1)]

    assert [item.slide_id for item in top(items, 2)] == ["c", "a"]


def test_crop_level_is_the_coarsest_still_sharp_enough() -> None:
    every = (0, 1, 2)
    assert crop_level(LEVELS, 1024, every).index == 1  # 256 px at level 1
    assert crop_level(LEVELS, 4096, every).index == 2  # 256 px at level 2
    assert crop_level(LEVELS, 100, every).index == 0  # smaller than a thumbnail: full resolution
    assert crop_level(LEVELS, 100, (1, 2)).index == 1  # level 0 too large to fetch: the next


def test_crop_square_must_lie_inside_the_slide() -> None:
    check_crop(LEVELS, 7000, 5000, 1000)
    with pytest.raises(RegionError):
        check_crop(LEVELS, 7500, 0, 1000)


def test_crop_url() -> None:
    assert crop_url("abc", 1, 2, 3) == "/v1/slides/abc/crop?x=1&y=2&size=3"

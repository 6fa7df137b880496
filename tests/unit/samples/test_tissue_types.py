"""The tissue-type slides: every type planted, deterministic in the seed, the types unlike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slidestream_samples.tissue_types import (
    GLASS,
    LEVEL0_MPP_UM,
    TISSUE_TYPES,
    TissueTypeSlide,
    paint_tissue_type_slide,
    write_tissue_type_slide,
)
from slidestream_wsi.pyramid import open_source

WIDTH_PX, HEIGHT_PX = 1024, 768
"""Small slides: the painting's cost grows with the area, its textures do not change."""


@pytest.fixture(scope="module")
def slide() -> TissueTypeSlide:
    return paint_tissue_type_slide(7, WIDTH_PX, HEIGHT_PX)


def test_every_type_is_planted_and_glass_surrounds_the_section(slide: TissueTypeSlide) -> None:
    assert slide.rgb.shape == (HEIGHT_PX, WIDTH_PX, 3)
    assert slide.regions.shape == (HEIGHT_PX, WIDTH_PX)
    shares = {label: float(slide.mask(label).mean()) for label in TISSUE_TYPES}
    assert all(share > 0.02 for share in shares.values()), shares
    glass = slide.regions == GLASS
    assert 0.15 < glass.mean() < 0.5
    assert set(np.unique(slide.regions)) == {*range(len(TISSUE_TYPES)), GLASS}
    # Glass is bright and unstained; the section absorbs.
    assert slide.rgb[glass].mean() > 230
    assert slide.rgb[~glass].mean() < slide.rgb[glass].mean() - 20


def test_the_same_seed_paints_the_same_slide(slide: TissueTypeSlide) -> None:
    again = paint_tissue_type_slide(7, WIDTH_PX, HEIGHT_PX)
    other = paint_tissue_type_slide(8, WIDTH_PX, HEIGHT_PX)
    assert np.array_equal(again.rgb, slide.rgb)
    assert np.array_equal(again.regions, slide.regions)
    assert not np.array_equal(other.regions, slide.regions)


def test_the_types_differ_in_colour_and_texture(slide: TissueTypeSlide) -> None:
    grey = slide.rgb.astype(np.float32).mean(axis=2)
    colour = {label: slide.rgb[slide.mask(label)].mean(axis=0) for label in TISSUE_TYPES}
    # Tumour is the darkest (crowded nuclei), fat the palest (empty cells), stroma the pinkest
    # (eosin takes the green).
    brightness = {label: float(value.mean()) for label, value in colour.items()}
    assert min(brightness, key=brightness.__getitem__) == "tumour"
    assert max(brightness, key=brightness.__getitem__) == "fat"
    redness = {label: float(value[0] - value[1]) for label, value in colour.items()}
    assert max(redness, key=redness.__getitem__) == "stroma"
    # Mucus is smooth; tumour's nuclei make it the most contrasted.
    spread = {label: float(grey[slide.mask(label)].std()) for label in TISSUE_TYPES}
    assert max(spread, key=spread.__getitem__) == "tumour"
    assert spread["mucus"] < spread["tumour"] / 3


def test_the_written_slide_is_a_pyramid_the_reader_opens(tmp_path: Path) -> None:
    path = tmp_path / "slide.tiff"
    write_tissue_type_slide(path, 3, WIDTH_PX, HEIGHT_PX)
    with open_source([path]) as source:
        assert source.mpp is not None
        assert source.mpp[0] == pytest.approx(LEVEL0_MPP_UM, rel=1e-3)
        assert (source.levels[0].width, source.levels[0].height) == (WIDTH_PX, HEIGHT_PX)
        assert len(source.levels) >= 2

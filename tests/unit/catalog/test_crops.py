"""Crops of a converted slide through the one slide reader: the right pixels, at most 256 px."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from slidestream_catalog.adapters.crops import PyramidCrops
from slidestream_catalog.adapters.similar_source import SlideImages
from slidestream_catalog.domain.similarity import Level
from tests.support.fakes import MemoryStore
from tests.support.inference import STRIPE_WIDTH_PX, convert_striped, put, stripe_grey


async def test_crop_shows_the_stripes_of_its_square(tmp_path: Path) -> None:
    slide = convert_striped(tmp_path)
    store = MemoryStore()
    refs = tuple(
        put(store, "converted", f"t/s/{path.name}", path.read_bytes()) for path in slide.files
    )
    images = SlideImages(
        tuple(Level(lv.index, lv.width_px, lv.height_px) for lv in slide.levels), refs, None
    )
    crops = PyramidCrops(store, "converted", tmp_path / "work")

    # Two stripes side by side: columns 2 and 3 of level 0, 512 px square.
    png = await crops.crop_png(images, 2 * STRIPE_WIDTH_PX, 256, 2 * STRIPE_WIDTH_PX)

    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert picture.shape == (256, 256)
    assert abs(int(np.median(picture[:, 20:100])) - stripe_grey(2)) <= 6
    assert abs(int(np.median(picture[:, 156:236])) - stripe_grey(3)) <= 6

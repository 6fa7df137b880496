"""Thumbnails of a level-0 square, read from the slide's converted DICOM levels (the one slide
reader, :mod:`slidestream_wsi.pyramid`) in the object store.

Steps: (1) choose the level (:func:`~slidestream_catalog.domain.similarity.crop_level`, among the
levels small enough to fetch); (2) download that level's ``level-<i>.dcm``, checked against its
reference; (3) decode the tiles the square covers; (4) resize to at most 256 px; (5) PNG.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from pathlib import Path
from typing import Final, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_catalog.adapters.similar_source import SlideImages
from slidestream_catalog.domain.similarity import CROP_MAX_PX, crop_level
from slidestream_platform.objectstore import ObjectStore
from slidestream_platform.objectstore.downloads import download_verified
from slidestream_wsi.convert.model import level_file_name
from slidestream_wsi.pyramid import SourceLevel, open_source

MAX_LEVEL_FILE_BYTES: Final = 512 * 1024**2
"""Larger level files are never fetched for a thumbnail (a coarser level serves instead)."""


class Crops(Protocol):
    async def crop_png(self, images: SlideImages, x: int, y: int, size_px: int) -> bytes: ...


class PyramidCrops:
    def __init__(self, store: ObjectStore, bucket: str, work_dir: Path) -> None:
        self._store = store
        self._bucket = bucket
        self._work_dir = work_dir

    async def crop_png(self, images: SlideImages, x: int, y: int, size_px: int) -> bytes:
        return await asyncio.to_thread(self._crop, images, x, y, size_px)

    def _crop(self, images: SlideImages, x: int, y: int, size_px: int) -> bytes:
        refs = {
            lv.index: ref
            for lv in images.levels
            for ref in images.dicom
            if ref.key.rsplit("/", 1)[-1] == level_file_name(lv.index)
            and ref.size_bytes <= MAX_LEVEL_FILE_BYTES
        }
        level = crop_level(images.levels, size_px, tuple(refs))
        base = next(lv for lv in images.levels if lv.index == 0)
        scale = level.width_px / base.width_px
        self._work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._work_dir) as folder:
            path = download_verified(
                self._store,
                refs[level.index],
                Path(folder) / level_file_name(level.index),
                expected_bucket=self._bucket,
            )
            with open_source([path]) as slide:
                pixels = read_square(
                    slide.levels[0], round(x * scale), round(y * scale), round(size_px * scale)
                )
        side = min(CROP_MAX_PX, max(pixels.shape[:2]))
        thumbnail = cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA)
        ok, png = cv2.imencode(".png", cv2.cvtColor(thumbnail, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError("PNG encoding failed")
        return png.tobytes()


def read_square(level: SourceLevel, x: int, y: int, side: int) -> npt.NDArray[np.uint8]:
    """RGB pixels of the square ``(x, y) + side`` of ``level`` (clipped to the level)."""
    side = max(side, 1)
    right, bottom = min(x + side, level.width), min(y + side, level.height)
    out = np.full((bottom - y, right - x, 3), 255, np.uint8)
    tw, th = level.tile_width, level.tile_height
    for row in range(y // th, math.ceil(bottom / th)):
        for column in range(x // tw, math.ceil(right / tw)):
            index = row * level.columns + column
            tile = level.decode(level.read_raw(index), index)
            top, left = row * th, column * tw
            ys, xs = max(y, top), max(x, left)
            ye, xe = min(bottom, top + th), min(right, left + tw)
            out[ys - y : ye - y, xs - x : xe - x] = tile[ys - top : ye - top, xs - left : xe - left]
    return out

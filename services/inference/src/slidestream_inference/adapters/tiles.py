"""The slide work behind a Protocol: one converted DICOM level (or the pyramidal TIFF, for a
tenant whose conversion writes no DICOM) opened with the one slide reader
(:mod:`slidestream_wsi.pyramid`), its tiles planned over QC's tissue mask and served in batches,
and a small level read whole for the heat maps' background.

Only the level files a run downloaded are opened: the reader then numbers that level 0, so the
plan's origins are that level's pixels, turned into the slide's level-0 pixels with the level's
downsample from the QC event (1 for the TIFF, whose level 0 is the slide's).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from slidestream_inference.domain.artefacts import THUMBNAIL_LONG_SIDE_PX
from slidestream_platform.errors import PoisonError
from slidestream_wsi.pyramid import (
    PyramidLevel,
    SourceSlide,
    TileBatch,
    TilePlan,
    iter_tile_batches,
    open_source,
    plan_tiles,
)

MASK_USABLE_MIN_GREY = 128
"""QC writes usable tissue as 255 and the rest as 0; anything from mid-grey up counts."""


class InvalidTissueMaskError(PoisonError):
    reason = "invalid-tissue-mask"


@dataclass(frozen=True, slots=True)
class TileRequest:
    """What to tile: the model's spacing and tile size, and its minimum share of tissue."""

    mpp_um: float
    tile_size_px: int
    min_tissue_fraction: float


class LevelTiles(Protocol):
    @property
    def plan(self) -> TilePlan: ...

    @property
    def origins_l0_px(self) -> npt.NDArray[np.int64]:
        """(N, 2): each tile's top-left corner in the slide's level-0 pixels, plan order."""
        ...

    @property
    def tile_size_l0_px(self) -> float: ...

    @property
    def bytes_read(self) -> int: ...

    def parts(self, count: int, batch_size: int) -> list[tuple[int, Iterator[TileBatch]]]:
        """The plan cut into ``count`` runs of consecutive tiles, each with its first tile's
        position and its own batch iterator (one per decoding thread)."""
        ...

    def close(self) -> None: ...


class TileReader(Protocol):
    def open(
        self, level_file: Path, level: PyramidLevel, mask_png: bytes, request: TileRequest
    ) -> LevelTiles: ...

    def thumbnail(self, level_file: Path, level_index: int = 0) -> npt.NDArray[np.uint8]:
        """Level ``level_index`` of ``level_file``, whole, shrunk to at most the thumbnail size
        (RGB)."""
        ...


def decode_mask(mask_png: bytes) -> npt.NDArray[np.bool_]:
    grey = cv2.imdecode(np.frombuffer(mask_png, np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None or grey.ndim != 2 or 0 in grey.shape:
        raise InvalidTissueMaskError("QC's tissue mask is not a greyscale PNG")
    return np.asarray(grey >= MASK_USABLE_MIN_GREY)


class WsiLevelTiles:
    def __init__(self, slide: SourceSlide, plan: TilePlan, level: PyramidLevel) -> None:
        self._slide = slide
        self._plan = plan
        self._origins_l0: npt.NDArray[np.int64] = np.rint(
            plan.origins_px * level.downsample
        ).astype(np.int64)
        self._tile_l0 = plan.span_px * plan.level.downsample * level.downsample

    @property
    def plan(self) -> TilePlan:
        return self._plan

    @property
    def origins_l0_px(self) -> npt.NDArray[np.int64]:
        return self._origins_l0

    @property
    def tile_size_l0_px(self) -> float:
        return self._tile_l0

    @property
    def bytes_read(self) -> int:
        return self._slide.bytes_read

    def parts(self, count: int, batch_size: int) -> list[tuple[int, Iterator[TileBatch]]]:
        total = len(self._plan.origins_px)
        bounds = np.linspace(0, total, max(1, min(count, total)) + 1).round().astype(int)
        return [
            (
                start,
                iter_tile_batches(
                    self._slide,
                    dataclasses.replace(self._plan, origins_px=self._plan.origins_px[start:stop]),
                    batch_size,
                ),
            )
            for start, stop in itertools.pairwise(bounds.tolist())
            if stop > start
        ]

    def close(self) -> None:
        self._slide.close()


class WsiTileReader:
    def open(
        self, level_file: Path, level: PyramidLevel, mask_png: bytes, request: TileRequest
    ) -> LevelTiles:
        mask = decode_mask(mask_png)
        slide = open_source([level_file])
        try:
            plan = plan_tiles(
                slide,
                mpp_um=request.mpp_um,
                tile_size_px=request.tile_size_px,
                mask=mask,
                min_tissue_fraction=request.min_tissue_fraction,
            )
        except BaseException:
            slide.close()
            raise
        return WsiLevelTiles(slide, plan, level)

    def thumbnail(self, level_file: Path, level_index: int = 0) -> npt.NDArray[np.uint8]:
        with open_source([level_file]) as slide:
            # A pyramidal TIFF holds every level; its smallest is the fallback should the
            # converted file hold fewer levels than the event lists.
            source = slide.levels[min(level_index, len(slide.levels) - 1)]
            canvas = np.empty(
                (source.rows * source.tile_height, source.columns * source.tile_width, 3), np.uint8
            )
            for index in range(source.tile_count):
                row, column = divmod(index, source.columns)
                top, left = row * source.tile_height, column * source.tile_width
                canvas[top : top + source.tile_height, left : left + source.tile_width] = (
                    source.decode(source.read_raw(index), index)
                )
            rgb = canvas[: source.height, : source.width]
        scale = THUMBNAIL_LONG_SIDE_PX / max(rgb.shape[:2])
        if scale >= 1:
            return np.ascontiguousarray(rgb)
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)

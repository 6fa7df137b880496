"""Level geometry as every caller sees it: size, tile size, downsample and spacing per level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from slidestream_wsi.pyramid.spacing import Mpp

if TYPE_CHECKING:
    from slidestream_wsi.pyramid.level import SourceLevel


@dataclass(frozen=True, slots=True)
class PyramidLevel:
    """One resolution level of a slide, described without decoding anything."""

    index: int
    """Position in the pyramid, 0 = the full resolution."""
    width_px: int
    height_px: int
    mpp_x: float | None
    """Pixel spacing along x in micrometres per pixel, ``None`` when the file does not say."""
    mpp_y: float | None
    downsample: float
    """Level-0 width divided by this level's width."""
    tile_width_px: int
    tile_height_px: int

    @property
    def pixels(self) -> int:
        return self.width_px * self.height_px


def level_geometry(
    level0_mpp: Mpp | None, levels: Sequence[SourceLevel]
) -> tuple[PyramidLevel, ...]:
    """The geometry of ``levels`` (largest first, level 0 among them).

    A level's spacing is its own where the container states one per level (a DICOM instance's
    PixelSpacing, PS3.3 C.8.12.4); else level 0's scaled by the level's size ratio along each
    axis (a TIFF pyramid states the full resolution's spacing; the reduced levels' resolution
    tags are not read, so no vendor's rounding of them can disagree with level 0).
    """
    if not levels:
        return ()
    base = levels[0]
    out: list[PyramidLevel] = []
    for level in levels:
        mpp = level.declared_mpp
        if mpp is None and level0_mpp is not None:
            mpp = (
                level0_mpp[0] * base.width / level.width,
                level0_mpp[1] * base.height / level.height,
            )
        out.append(
            PyramidLevel(
                level.index,
                level.width,
                level.height,
                mpp[0] if mpp else None,
                mpp[1] if mpp else None,
                base.width / level.width,
                level.tile_width,
                level.tile_height,
            )
        )
    return tuple(out)


class DescribedLevel(Protocol):
    """A level as a pipeline event describes it (``slides.converted.v1``'s levels): enough to
    choose levels before any file is downloaded."""

    @property
    def index(self) -> int: ...

    @property
    def width_px(self) -> int: ...

    @property
    def height_px(self) -> int: ...

    @property
    def tile_size_px(self) -> int: ...

    @property
    def mpp_x(self) -> float | None: ...

    @property
    def mpp_y(self) -> float | None: ...


def described_geometry(levels: Iterable[DescribedLevel]) -> tuple[PyramidLevel, ...]:
    """The geometry of a pyramid described by an event, in level order; each level's own
    spacing as described, its downsample from the widest level."""
    ordered = sorted(levels, key=lambda level: level.index)
    if not ordered:
        return ()
    base_width = max(level.width_px for level in ordered)
    return tuple(
        PyramidLevel(
            index=level.index,
            width_px=level.width_px,
            height_px=level.height_px,
            mpp_x=level.mpp_x,
            mpp_y=level.mpp_y,
            downsample=base_width / level.width_px,
            tile_width_px=level.tile_size_px,
            tile_height_px=level.tile_size_px,
        )
        for level in ordered
    )

"""Which output levels exist and how each output gets its tiles: copied, re-encoded or generated.

Policy (lossless first):

* every source level that is smaller than the one before it is an output level;
* its tiles are *copied* into an output when that output can carry them as they are: a tile
  grid (not stripes), tile sides a multiple of 16 px between :data:`MIN_COPIED_TILE_PX` and
  :data:`MAX_COPIED_TILE_PX` (TIFF 6.0 §15 requires multiples of 16 for tiles), no missing
  tiles, and a codec that output and its readers know: baseline JPEG, JPEG 2000 (DICOM only:
  OpenSlide cannot read JPEG 2000 tiles from a generic TIFF) or uncompressed;
* otherwise the level is decoded once and *re-encoded* as baseline JPEG at the configured
  quality and tile size;
* levels missing from the dyadic pyramid are *generated*: (``extend_pyramid``) below the smallest
  source level down to one tile, and (``fill_pyramid_gaps``) between two source levels more than
  2x apart, each from the level just above it (the nearest existing one), in the same pass as
  that level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from slidestream_wsi.convert.model import Compression, ConversionOptions, OutputFormat
from slidestream_wsi.errors import UnsupportedFormatError
from slidestream_wsi.pyramid import SourceLevel, SourceSlide

MIN_COPIED_TILE_PX = 64
MAX_COPIED_TILE_PX = 4096
TIFF_TILE_MULTIPLE_PX = 16
GAP_RATIO = 2.2
"""Two source levels further apart than this (in width) get the dyadic levels between them
(2x apart with scanner rounding is not a gap)."""
MIN_TILE_SIZE_PX = 16
MAX_TILE_SIZE_PX = 4096

EncodingMode = Literal["copy", "encode"]


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one output stores one level's tiles."""

    mode: EncodingMode
    compression: Compression
    tile_width: int
    tile_height: int
    dicom_photometric: str
    """DICOM Photometric Interpretation of the frames (also decides the TIFF photometric)."""
    reason: str


@dataclass(frozen=True, slots=True)
class LevelPlan:
    index: int
    width: int
    height: int
    source: SourceLevel | None
    """The source level copied or re-encoded; None for a generated level."""
    parent: int | None
    """For a generated level: the plan index it is downsampled from."""
    dicom: Encoding | None
    tiff: Encoding | None
    downsample: float
    """Level-0 pixels per pixel of this level: a power of 2 when the size is level 0's halved
    k times (floored or ceiled, as scanners and we round), else the width ratio."""

    @property
    def generated(self) -> bool:
        return self.source is None

    def encoding(self, output: OutputFormat) -> Encoding | None:
        return self.dicom if output == "dicom" else self.tiff


def _encoded(options: ConversionOptions, reason: str) -> Encoding:
    size = options.tile_size_px
    return Encoding("encode", "jpeg", size, size, "YBR_FULL_422", reason)


def _copy_refusal(
    level: SourceLevel, output: OutputFormat, tile_px: int | None = None
) -> str | None:
    """Why ``output`` cannot carry the level's stored tiles, or None when it can; with
    ``tile_px``, tiles of another size than the pyramid's are refused too."""
    coding = level.coding
    if not level.tiled:
        return "stripes, not tiles"
    if level.has_missing_tiles:
        return "sparse tile grid"
    sides = (level.tile_width, level.tile_height)
    if any(
        s % TIFF_TILE_MULTIPLE_PX or not MIN_COPIED_TILE_PX <= s <= MAX_COPIED_TILE_PX
        for s in sides
    ):
        return f"tile size {level.tile_width}x{level.tile_height}"
    if tile_px is not None and sides != (tile_px, tile_px):
        return (
            f"tiles {level.tile_width}x{level.tile_height}, not the pyramid's {tile_px}x{tile_px}"
        )
    if coding.dicom_photometric is None:
        return f"{coding.compression} tiles that DICOM cannot signal"
    if coding.compression not in ("jpeg", "jpeg2000", "none"):
        return f"{coding.compression} tiles"
    if output == "tiff" and coding.compression == "jpeg2000":
        return "JPEG 2000 tiles (OpenSlide reads no JPEG 2000 from a generic TIFF)"
    return None


def _source_encoding(
    level: SourceLevel, output: OutputFormat, options: ConversionOptions
) -> Encoding:
    refusal = _copy_refusal(level, output, options.tile_size_px)
    if refusal is not None:
        return _encoded(options, f"re-encoded: {refusal}")
    compression = level.coding.compression
    assert compression in ("jpeg", "jpeg2000", "none")  # checked by _copy_refusal
    photometric = level.coding.dicom_photometric or "RGB"
    return Encoding(
        "copy",
        compression,
        level.tile_width,
        level.tile_height,
        photometric,
        f"copied: {compression} tiles {level.tile_width}x{level.tile_height}",
    )


def nominal_downsample(width0: int, height0: int, width: int, height: int) -> float:
    ratio = width0 / width
    power = 2 ** round(math.log2(ratio))
    if abs(width0 / power - width) < 1 and abs(height0 / power - height) < 1:
        return float(power)
    return ratio


def plan_levels(slide: SourceSlide, options: ConversionOptions) -> list[LevelPlan]:
    _check_options(options)
    sources = _shrinking_levels(slide)
    level0 = sources[0]
    plans: list[LevelPlan] = []
    for position, level in enumerate(sources):
        if position and options.fill_pyramid_gaps:
            while plans[-1].width / level.width > GAP_RATIO:
                plans.append(_generated_plan(plans[-1], len(plans), options))
        plans.append(_source_plan(level, len(plans), level0, options))
    while options.extend_pyramid and max(plans[-1].width, plans[-1].height) > options.tile_size_px:
        plans.append(_generated_plan(plans[-1], len(plans), options))
    return plans


def pyramid_tile_px(slide: SourceSlide, options: ConversionOptions) -> int:
    """The tile side every output level shares: level 0's own where its tiles are square and
    can be copied (a scanner's 240 px Aperio tiles stay as stored, and the levels made below
    them are tiled alike), else ``options.tile_size_px``.

    One size for the whole pyramid because readers group levels by it: wsidicom (as a viewer's
    tile grid does) reads levels of another tile size than the base as another pyramid, and the
    reopen check then misses them. A copied level of another size is re-encoded instead.
    """
    level0 = _shrinking_levels(slide)[0]
    side = level0.tile_width
    copyable = any(_copy_refusal(level0, output) is None for output in options.outputs)
    if copyable and level0.tile_height == side and MIN_TILE_SIZE_PX <= side <= MAX_TILE_SIZE_PX:
        return side
    return options.tile_size_px


def _check_options(options: ConversionOptions) -> None:
    if not MIN_TILE_SIZE_PX <= options.tile_size_px <= MAX_TILE_SIZE_PX or (
        options.tile_size_px % TIFF_TILE_MULTIPLE_PX
    ):
        raise ValueError("tile_size_px must be a multiple of 16 between 16 and 4096")
    if not options.outputs:
        raise ValueError("no output format requested")


def _shrinking_levels(slide: SourceSlide) -> list[SourceLevel]:
    """The slide's levels that are smaller in both dimensions than the one before."""
    sources: list[SourceLevel] = []
    for level in slide.levels:
        if not sources or (level.width < sources[-1].width and level.height < sources[-1].height):
            sources.append(level)
    if not sources:
        raise UnsupportedFormatError("slide without a pyramid level")
    return sources


def _source_plan(
    level: SourceLevel, index: int, level0: SourceLevel, options: ConversionOptions
) -> LevelPlan:
    """Output level ``index`` made from a level of the source."""
    return LevelPlan(
        index=index,
        width=level.width,
        height=level.height,
        source=level,
        parent=None,
        dicom=_source_encoding(level, "dicom", options) if "dicom" in options.outputs else None,
        tiff=_source_encoding(level, "tiff", options) if "tiff" in options.outputs else None,
        downsample=nominal_downsample(level0.width, level0.height, level.width, level.height),
    )


def _generated_plan(parent: LevelPlan, index: int, options: ConversionOptions) -> LevelPlan:
    """Output level ``index`` made by halving level ``parent`` (a pyramid gap or extension)."""
    reason = f"generated: 2x downsampled from level {parent.index}"
    encoding = _encoded(options, reason)
    return LevelPlan(
        index=index,
        width=math.ceil(parent.width / 2),
        height=math.ceil(parent.height / 2),
        source=None,
        parent=parent.index,
        dicom=encoding if "dicom" in options.outputs else None,
        tiff=encoding if "tiff" in options.outputs else None,
        downsample=parent.downsample * 2,
    )

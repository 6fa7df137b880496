"""Moved to :mod:`slidestream_wsi.pyramid` (the one slide reader).

Kept so that ``convert/pipeline.py`` and the modules being split out of it import unchanged while
that split is in flight; remove once nothing imports it.
"""

from slidestream_wsi.pyramid import (
    BACKGROUND_RGB,
    RGB_SAMPLES,
    Pixels,
    RawTile,
    SourceLevel,
    SourceSlide,
    TileCoding,
    open_source,
)

__all__ = [
    "BACKGROUND_RGB",
    "RGB_SAMPLES",
    "Pixels",
    "RawTile",
    "SourceLevel",
    "SourceSlide",
    "TileCoding",
    "open_source",
]

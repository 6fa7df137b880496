"""The one slide reader: every container, one spacing rule, counted ranged reads.

``open_source(paths)`` opens a TIFF-family file (:mod:`~.tiff`) or a DICOM WSI series
(:mod:`~.dicom`) as a :class:`SourceSlide`: its levels (raw stored tiles for the lossless copy,
a decoder for the rest), its level-0 spacing and objective power (:mod:`~.spacing`, the one
rule), its level geometry (:mod:`~.geometry`) and a byte counter over every read
(:mod:`~.counting`). :func:`plan_tiles` and :func:`iter_tile_batches` (:mod:`~.tiles`) serve
tiles at a chosen magnification over a tissue mask; :func:`describe_slide` (:mod:`~.describe`)
states format, vendor and spacing from the directories alone. Conversion, QC, inference and
de-identification's event read slides through here only.
"""

from slidestream_wsi.pyramid.counting import ByteCounter
from slidestream_wsi.pyramid.describe import SlideDescription, describe_slide
from slidestream_wsi.pyramid.geometry import (
    DescribedLevel,
    PyramidLevel,
    described_geometry,
    level_geometry,
)
from slidestream_wsi.pyramid.level import (
    BACKGROUND_RGB,
    COPY_RUN_BYTES,
    RAW_ROW_BUFFER_MAX_BYTES,
    RAW_RUN_BYTES,
    RGB_SAMPLES,
    Compression,
    Grey,
    Pixels,
    RawTile,
    SourceLevel,
    SourceSlide,
    SourceThumbnail,
    TileCoding,
)
from slidestream_wsi.pyramid.reader import open_source
from slidestream_wsi.pyramid.spacing import PLAUSIBLE_MPP_UM, Mpp
from slidestream_wsi.pyramid.tiles import (
    TileBatch,
    TilePlan,
    choose_level,
    iter_tile_batches,
    plan_tiles,
    resample_square,
)

__all__ = [
    "BACKGROUND_RGB",
    "COPY_RUN_BYTES",
    "PLAUSIBLE_MPP_UM",
    "RAW_ROW_BUFFER_MAX_BYTES",
    "RAW_RUN_BYTES",
    "RGB_SAMPLES",
    "ByteCounter",
    "Compression",
    "DescribedLevel",
    "Grey",
    "Mpp",
    "Pixels",
    "PyramidLevel",
    "RawTile",
    "SlideDescription",
    "SourceLevel",
    "SourceSlide",
    "SourceThumbnail",
    "TileBatch",
    "TileCoding",
    "TilePlan",
    "choose_level",
    "describe_slide",
    "described_geometry",
    "iter_tile_batches",
    "level_geometry",
    "open_source",
    "plan_tiles",
    "resample_square",
]

"""The DICOM thumbnail instance (PS3.3 §C.8.12.4.1.1, Image Type value 3 THUMBNAIL): a small
written level decoded again, or the thumbnail image the source stores."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from slidestream_wsi.convert.dicom_out import (
    DicomInstanceWriter,
    InstanceGeometry,
    SlideDescription,
    build_dataset,
)
from slidestream_wsi.convert.model import ConversionOptions
from slidestream_wsi.convert.pixels import encode_jpeg, fit_within
from slidestream_wsi.convert.plan import LevelPlan
from slidestream_wsi.convert.targets import THUMBNAIL_NAME, level_file_name
from slidestream_wsi.pyramid import Pixels, SourceThumbnail, open_source

THUMBNAIL_MAX_PX = 1024
"""The thumbnail instance is the largest pyramid level that fits in this square."""


def write_thumbnail(
    plans: list[LevelPlan],
    options: ConversionOptions,
    source_thumbnail: SourceThumbnail | None,
    out_dir: Path,
    description: SlideDescription,
) -> Path | None:
    """Write ``thumbnail.dcm`` from a small level or the source's thumbnail; None when there
    is neither (or no DICOM output)."""
    plan = thumbnail_plan(plans, options)
    if "dicom" not in options.outputs or (plan is None and source_thumbnail is None):
        return None
    if plan is not None:
        image = decoded_level(out_dir, plan)
        downsample = plan.downsample
    else:
        assert source_thumbnail is not None
        image = fit_within(source_thumbnail.read(), THUMBNAIL_MAX_PX)
        # Level-0 pixels per thumbnail pixel, across (the scanner rounds the height on its own).
        downsample = description.level0_size[0] / image.shape[1]
    geometry = _geometry(image, downsample, instance_number=len(plans) + 1)
    path = out_dir / THUMBNAIL_NAME
    data = encode_jpeg(image, options.jpeg_quality)
    with DicomInstanceWriter(path, build_dataset(description, geometry), len(data) + 16) as writer:
        writer.add_frame(data)
    return path


def thumbnail_plan(plans: list[LevelPlan], options: ConversionOptions) -> LevelPlan | None:
    """The level the thumbnail instance repeats: the largest within THUMBNAIL_MAX_PX, else
    the smallest level when the pyramid was extended to one tile; None when the source's
    levels are kept as they are and none is that small (decoding a whole large level for a
    thumbnail costs more than the copy: the source's own thumbnail image serves then)."""
    candidates = [p for p in plans if max(p.width, p.height) <= THUMBNAIL_MAX_PX]
    if candidates:
        return candidates[0]
    return plans[-1] if options.extend_pyramid else None


def decoded_level(out_dir: Path, plan: LevelPlan) -> Pixels:
    """A small written level, decoded whole from its DICOM instance."""
    with ExitStack() as stack:
        written = open_source([out_dir / level_file_name(plan.index)])
        stack.callback(written.close)
        level = written.levels[0]
        image = np.empty(
            (level.rows * level.tile_height, level.columns * level.tile_width, 3), np.uint8
        )
        for index in range(level.tile_count):
            row, column = divmod(index, level.columns)
            y, x = row * level.tile_height, column * level.tile_width
            tile = level.decode(level.read_raw(index), index)
            image[y : y + level.tile_height, x : x + level.tile_width] = tile
    return np.ascontiguousarray(image[: plan.height, : plan.width])


def _geometry(image: Pixels, downsample: float, instance_number: int) -> InstanceGeometry:
    """One frame holding the whole image."""
    height, width = image.shape[:2]
    return InstanceGeometry(
        name="thumbnail",
        flavor="THUMBNAIL",
        width=width,
        height=height,
        tile_width=width,
        tile_height=height,
        compression="jpeg",
        photometric="YBR_FULL_422",
        instance_number=instance_number,
        derived=True,
        downsample=downsample,
    )

"""Where a conversion writes: the output files' names, a level's DICOM instance (its geometry
and offset-table sizing), and the spool that holds a generated level's TIFF tiles."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from slidestream_wsi.convert.dicom_out import (
    DicomInstanceWriter,
    InstanceGeometry,
    SlideDescription,
    build_dataset,
)
from slidestream_wsi.convert.pixels import JPEG_SUBSAMPLING
from slidestream_wsi.convert.plan import Encoding, LevelPlan

TIFF_NAME = "slide.ome.tiff"
THUMBNAIL_NAME = "thumbnail.dcm"
SPOOL_PREFIX = ".convert-spool-"
_SPOOL_BUFFER_BYTES = 4 * 1024 * 1024
# Bound of an encoded tile relative to its raw size, for choosing BOT vs EOT up front.
_ENCODED_BOUND_FACTOR = 1.5
_COPY_OVERHEAD_BYTES = 64


def level_file_name(index: int) -> str:
    return f"level-{index}.dcm"


def remove_previous_outputs(out_dir: Path) -> None:
    """A redelivery overwrites; stale levels of an earlier attempt would join the series."""
    for stale in [
        *out_dir.glob("level-*.dcm"),
        *out_dir.glob(THUMBNAIL_NAME),
        *out_dir.glob(TIFF_NAME),
        *out_dir.glob(SPOOL_PREFIX + "*"),
    ]:
        stale.unlink()


@dataclass
class Spool:
    """Encoded tiles of a generated level, waiting for their turn in the TIFF."""

    path: Path
    handle: BinaryIO
    sizes: list[int] = field(default_factory=list)

    def add(self, tiles: Sequence[bytes]) -> None:
        self.handle.write(b"".join(tiles))
        self.sizes.extend(len(data) for data in tiles)

    def tiles(self) -> Iterator[bytes]:
        self.handle.flush()
        with self.path.open("rb", buffering=_SPOOL_BUFFER_BYTES) as reader:
            for size in self.sizes:
                yield reader.read(size)

    def discard(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


@dataclass
class GeneratedOutputs:
    """Where a generated level's tiles go while the pass above it produces them: its DICOM
    instance is written as they come (its frame count is known up front); the TIFF takes one
    level after another, so its tiles wait in a spool."""

    dicom: DicomInstanceWriter | None
    spool: Spool | None
    frames: int = 0

    def emit(self, tiles: list[bytes]) -> None:
        if self.dicom is not None:
            self.dicom.add_frames(tiles)
        if self.spool is not None:
            self.spool.add(tiles)
        self.frames += len(tiles)

    def discard(self) -> None:
        """Spools always go; an instance still open here belongs to a failed run."""
        if self.dicom is not None:
            self.dicom.abort()
        if self.spool is not None:
            self.spool.discard()


class LevelTargets:
    """Opens the outputs of the levels of one conversion in ``out_dir``."""

    def __init__(self, out_dir: Path, description: SlideDescription) -> None:
        self.out_dir = out_dir
        self.description = description

    def open_instance(self, plan: LevelPlan, encoding: Encoding) -> DicomInstanceWriter:
        path = self.out_dir / level_file_name(plan.index)
        dataset = build_dataset(self.description, instance_geometry(plan, encoding))
        return DicomInstanceWriter(path, dataset, size_bound(plan, encoding))

    def open_generated(self, plan: LevelPlan, outputs: GeneratedOutputs) -> None:
        """Open a generated level's instance and spool into ``outputs``, which the caller
        already holds: what opened before a failure is discarded with it."""
        if plan.dicom is not None:
            outputs.dicom = self.open_instance(plan, plan.dicom)
        if plan.tiff is not None:
            spool_path = self.out_dir / f"{SPOOL_PREFIX}{plan.index}"
            outputs.spool = Spool(spool_path, spool_path.open("wb", buffering=_SPOOL_BUFFER_BYTES))


def instance_geometry(plan: LevelPlan, encoding: Encoding) -> InstanceGeometry:
    return InstanceGeometry(
        name=f"level-{plan.index}",
        flavor="VOLUME",
        width=plan.width,
        height=plan.height,
        tile_width=encoding.tile_width,
        tile_height=encoding.tile_height,
        compression=encoding.compression,
        photometric=encoding.dicom_photometric,
        instance_number=plan.index + 1,
        derived=encoding.mode == "encode" or plan.generated,
        downsample=plan.downsample,
    )


def size_bound(plan: LevelPlan, encoding: Encoding) -> int:
    """An upper bound of the level's frame bytes: past 4 GiB the instance needs an Extended
    Offset Table (PS3.3 §C.7.6.3.1.8), which must be chosen before the first frame."""
    frames = grid(plan.width, plan.height, encoding.tile_width, encoding.tile_height)
    if encoding.mode == "copy" and plan.source is not None:
        tables = len(plan.source.coding.jpeg_tables or b"")
        return plan.source.stored_bytes + frames * (tables + _COPY_OVERHEAD_BYTES)
    raw = encoding.tile_width * encoding.tile_height * 3
    return int(frames * (raw * _ENCODED_BOUND_FACTOR + 8))


def jpeg_subsampling(plan: LevelPlan, encoding: Encoding) -> tuple[int, int] | None:
    """The chroma subsampling the TIFF level declares: ours when encoding, the source's when
    its tiles are copied."""
    if encoding.compression != "jpeg":
        return None
    if encoding.mode == "encode":
        return JPEG_SUBSAMPLING
    assert plan.source is not None
    return plan.source.coding.jpeg_frame


def grid(width: int, height: int, tile_w: int, tile_h: int | None = None) -> int:
    """Tiles of a ``width`` x ``height`` level cut into ``tile_w`` x ``tile_h`` tiles."""
    return math.ceil(width / tile_w) * math.ceil(height / (tile_h or tile_w))

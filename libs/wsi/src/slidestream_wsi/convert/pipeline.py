"""One conversion: plan the pyramid, stream every level once into the requested outputs, then
prove and check what was written.

Each output level is produced in one pass over its source tiles, in row-major order. Copied
tiles go straight from the source file into the DICOM instance and/or the TIFF level; decoded
rows (only when some output re-encodes the level, or a generated level hangs below it) feed the
retiler and the downsampling chain of the generated levels, whose encoded tiles are spooled to
a scratch file next to the outputs until their turn comes. The TIFF writer pulls tiles (tifffile
takes an iterator); the DICOM writer is pushed the same tiles, so both outputs are written in
the same pass.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import BinaryIO

import numpy as np

from slidestream_wsi.convert.dicom_out import (
    DicomInstanceWriter,
    InstanceGeometry,
    SlideDescription,
    build_dataset,
    derived_uid,
)
from slidestream_wsi.convert.icc import srgb_profile
from slidestream_wsi.convert.jpeg import jpeg_header_length, parse_jpeg_frame
from slidestream_wsi.convert.model import (
    ConversionOptions,
    ConversionResult,
    ConvertedLevelReport,
    DicomIdentity,
)
from slidestream_wsi.convert.pixels import (
    JPEG_SUBSAMPLING,
    Downsampler,
    Retiler,
    encode_jpeg,
    fit_within,
)
from slidestream_wsi.convert.plan import Encoding, LevelPlan, plan_levels
from slidestream_wsi.convert.source import (
    Pixels,
    RawTile,
    SourceLevel,
    SourceSlide,
    open_source,
)
from slidestream_wsi.convert.tiff_out import PyramidTiffWriter
from slidestream_wsi.convert.verify import (
    DciodvfyRun,
    check_outputs_reopen,
    preload_reopen_readers,
    prove_level,
    require_dciodvfy,
    sample_indices,
    start_dciodvfy,
)
from slidestream_wsi.errors import ConformanceError, MissingPixelSpacingError

THUMBNAIL_MAX_PX = 1024
"""The thumbnail instance is the largest pyramid level that fits in this square."""
TIFF_NAME = "slide.ome.tiff"
THUMBNAIL_NAME = "thumbnail.dcm"
_SPOOL_PREFIX = ".convert-spool-"
# Bound of an encoded tile relative to its raw size, for choosing BOT vs EOT up front.
_ENCODED_BOUND_FACTOR = 1.5
_COPY_OVERHEAD_BYTES = 64
WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
"""Threads that decode and encode tiles: imagecodecs releases the GIL while it works, so tile
work runs on every core this process may use while the main thread copies and writes."""
_TILES_PER_TASK = 8
"""Tiles per pool task: small enough that the cores share a tile row, large enough that the
task overhead (tens of µs) is small against ~1 ms of JPEG work per tile."""
_MAX_PENDING_TASKS = 4 * WORKERS
"""Encode tasks one level may have in flight: bounds the tiles held while the pool catches
up (memory stays that of a few tile rows)."""
_MAX_KNOWN_HEADERS = 64
GIL_SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval during a conversion (the interpreter's default is 0.005 s)."""
ProgressCallback = Callable[[int, int], None]


def level_file_name(index: int) -> str:
    return f"level-{index}.dcm"


@dataclass
class _Spool:
    """Encoded tiles of a generated level, waiting for their turn in the TIFF."""

    path: Path
    handle: BinaryIO
    sizes: list[int] = field(default_factory=list)

    def add(self, tiles: Sequence[bytes]) -> None:
        self.handle.write(b"".join(tiles))
        self.sizes.extend(len(data) for data in tiles)

    def tiles(self) -> Iterator[bytes]:
        self.handle.flush()
        with self.path.open("rb", buffering=4 * 1024 * 1024) as reader:
            for size in self.sizes:
                yield reader.read(size)


@dataclass
class _GeneratedOutputs:
    """Where a generated level's tiles go while the pass above it produces them: its DICOM
    instance is written as they come (its frame count is known up front); the TIFF takes one
    level after another, so its tiles wait in a spool."""

    dicom: DicomInstanceWriter | None
    spool: _Spool | None
    frames: int = 0

    def emit(self, tiles: list[bytes]) -> None:
        if self.dicom is not None:
            self.dicom.add_frames(tiles)
        if self.spool is not None:
            self.spool.add(tiles)
        self.frames += len(tiles)


def _decode_tiles(
    level: SourceLevel, raws: Sequence[bytes | None], indices: Sequence[int]
) -> list[Pixels]:
    return [level.decode(raw, index) for raw, index in zip(raws, indices, strict=True)]


def _encode_tiles(tiles: Sequence[Pixels], quality: int) -> list[bytes]:
    return [encode_jpeg(tile, quality) for tile in tiles]


class _EncodedStream:
    """Encodes tile rows on the pool and hands the encoded tiles on in tile order, so that the
    output bytes do not depend on which thread finished first."""

    def __init__(self, pool: Executor, quality: int, emit: Callable[[list[bytes]], None]) -> None:
        self._pool = pool
        self._quality = quality
        self._emit = emit
        self._pending: deque[Future[list[bytes]]] = deque()

    def add_row(self, tiles: list[Pixels]) -> None:
        for start in range(0, len(tiles), _TILES_PER_TASK):
            chunk = tiles[start : start + _TILES_PER_TASK]
            self._pending.append(self._pool.submit(_encode_tiles, chunk, self._quality))
        while len(self._pending) > _MAX_PENDING_TASKS:  # bounds the tiles held in memory
            self._emit(self._pending.popleft().result())

    def collect(self, *, wait: bool) -> None:
        while self._pending and (wait or self._pending[0].done()):
            self._emit(self._pending.popleft().result())


class _CopiedJpegCheck:
    """:func:`_check_copied_jpeg` for every copied tile, parsing each distinct header once.

    A tile whose bytes up to the end of its scan header equal those of a tile already checked
    has the same frame header, so the comparison stands for the parse (tiles of one level
    usually share one header; the tables are the level's)."""

    def __init__(self, level: SourceLevel) -> None:
        self._level = level
        self._headers: dict[int, set[bytes]] = {}

    def __call__(self, frame: RawTile) -> None:
        for length, headers in self._headers.items():
            if bytes(frame[:length]) in headers:
                return
        data = bytes(frame)
        _check_copied_jpeg(data, self._level)
        if sum(len(headers) for headers in self._headers.values()) < _MAX_KNOWN_HEADERS:
            length = jpeg_header_length(data)
            self._headers.setdefault(length, set()).add(data[:length])


_RowWork = tuple[list[bytes | None], list[tuple[list[int], Future[list[Pixels]]]]]
"""A tile row under way: its stored tiles, and the pool's decodes of the ones needed."""


@dataclass
class _LevelOutcome:
    plan: LevelPlan
    sampled: list[int] = field(default_factory=list)
    source_hash: str | None = None
    seconds: float = 0.0


class _Progress:
    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self._callback = callback

    def tick(self, count: int = 1) -> None:
        self.done += count
        if self._callback is not None:
            self._callback(self.done, self.total)


def convert_slide(
    sources: Sequence[Path],
    out_dir: Path,
    identity: DicomIdentity,
    options: ConversionOptions = ConversionOptions(),  # noqa: B008 - frozen, shared safely
    progress: ProgressCallback | None = None,
) -> ConversionResult:
    """Convert a de-identified slide into DICOM WSI and/or pyramidal OME-TIFF in ``out_dir``.

    Raises a :class:`~slidestream_wsi.errors.SlideError` for a slide that cannot be converted
    (``ConformanceError`` when an output fails its gate) and
    :class:`~slidestream_wsi.errors.ConformanceToolMissing` when ``dciodvfy`` is missing.
    """
    with _short_gil_switch_interval():
        return _convert(sources, out_dir, identity, options, progress)


def _convert(
    sources: Sequence[Path],
    out_dir: Path,
    identity: DicomIdentity,
    options: ConversionOptions,
    progress: ProgressCallback | None,
) -> ConversionResult:
    started = time.perf_counter()
    if options.run_dciodvfy and "dicom" in options.outputs:
        require_dciodvfy()  # before any work: a missing tool is the environment's fault
    if options.reopen_check:
        preload_reopen_readers(options.outputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous_outputs(out_dir)
    slide = open_source([Path(s) for s in sources])
    try:
        return _Conversion(slide, out_dir, identity, options, progress, started).run()
    finally:
        slide.close()


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextmanager
def _short_gil_switch_interval() -> Iterator[None]:
    """Shorten the interpreter's GIL switch interval while a conversion runs.

    A pool thread that finishes a ~1 ms decode must take the GIL back to return the tile;
    with the default 5 ms interval it can wait that long behind the copying thread's Python,
    and the cores idle (measured: 8.4 s instead of 5.8 s for the 50k x 40k benchmark slide).
    Process-wide, so nested or concurrent conversions share one saved value."""
    global _switch_users, _switch_saved  # one interpreter-wide setting
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, GIL_SWITCH_INTERVAL_S))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def _remove_previous_outputs(out_dir: Path) -> None:
    """A redelivery overwrites; stale levels of an earlier attempt would join the series."""
    for stale in [
        *out_dir.glob("level-*.dcm"),
        *out_dir.glob(THUMBNAIL_NAME),
        *out_dir.glob(TIFF_NAME),
        *out_dir.glob(_SPOOL_PREFIX + "*"),
    ]:
        stale.unlink()


class _Conversion:
    def __init__(
        self,
        slide: SourceSlide,
        out_dir: Path,
        identity: DicomIdentity,
        options: ConversionOptions,
        progress: ProgressCallback | None,
        started: float,
    ) -> None:
        self.slide = slide
        self.out_dir = out_dir
        self.identity = identity
        self.options = options
        self.started = started
        self.plans = plan_levels(slide, options)
        self.warnings: list[str] = []
        self.generated: dict[int, _GeneratedOutputs] = {}
        self.dciodvfy_runs: list[DciodvfyRun] = []
        self.outcomes: list[_LevelOutcome] = []
        self.timings: dict[str, float] = {}
        self.pool: Executor | None = None
        self.generation_jobs: dict[int, Future[None]] = {}
        self.stopping = threading.Event()
        level0 = self.plans[0]
        self.level0_size = (level0.width, level0.height)
        icc = slide.icc_profile
        if icc is None and "dicom" in options.outputs:
            self.warnings.append("source has no ICC profile: sRGB assumed in DICOM")
        self.mpp = slide.mpp
        if self.mpp is None and options.assumed_mpp_um is not None:
            self.mpp = (options.assumed_mpp_um, options.assumed_mpp_um)
            self.warnings.append(
                f"source has no pixel spacing: {options.assumed_mpp_um} µm assumed as asked"
            )
        elif self.mpp is None and "dicom" in options.outputs:
            raise MissingPixelSpacingError("source has no pixel spacing, which DICOM WSI requires")
        elif self.mpp is None:
            self.warnings.append("source has no pixel spacing: none written")
        self.description = SlideDescription(
            identity=identity,
            mpp=self.mpp,
            level0_size=self.level0_size,
            objective_power=slide.objective_power,
            icc_profile=icc or srgb_profile(),
            color_space=None if icc else "SRGB",
            options_key=f"tile={options.tile_size_px};q={options.jpeg_quality}",
            source_lossy=any(
                level.coding.compression not in ("none", "lzw", "deflate") for level in slide.levels
            ),
        )
        total = 0
        for plan in self.plans:
            if plan.source is not None:
                total += plan.source.tile_count
            else:
                total += _grid(plan.width, plan.height, options.tile_size_px)
        self.progress = _Progress(total, progress)

    # -- the passes ---------------------------------------------------------------------

    def run(self) -> ConversionResult:
        with ExitStack() as gate:
            # dciodvfy runs while the next level is written; a failed conversion stops them.
            gate.callback(self._stop_dciodvfy)
            dicom_files = self._write_outputs()
            tiff_path = self.out_dir / TIFF_NAME if "tiff" in self.options.outputs else None
            return self._verify_and_report(tuple(dicom_files), tiff_path)

    def _write_outputs(self) -> list[Path]:
        dicom_files: list[Path] = []
        tiff_path = self.out_dir / TIFF_NAME if "tiff" in self.options.outputs else None
        with ExitStack() as stack:
            pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="convert")
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            self.pool = pool
            stack.callback(self._drop_generated)
            # Levels generated below a copied level do not wait for the copy: one thread
            # decodes and downsamples (on the pool) while this one copies, level after level.
            generator = ThreadPoolExecutor(1, thread_name_prefix="convert-generate")
            stack.callback(generator.shutdown, wait=True, cancel_futures=True)
            stack.callback(self.stopping.set)
            for plan in self.plans:
                if plan.source is not None and not _encodes(plan) and self._children(plan):
                    self.generation_jobs[plan.index] = generator.submit(
                        self._generation_job, plan, plan.source
                    )
            tiff = None
            if tiff_path is not None:
                tiff = PyramidTiffWriter(
                    tiff_path,
                    len(self.plans),
                    self.mpp,
                    self.slide.icc_profile,
                    self.slide.objective_power,
                    uuid.UUID(
                        int=int(derived_uid(self.identity, "ome-document").split(".")[-1]) % 2**128
                    ),
                )
            try:
                for plan in self.plans:
                    level_started = time.perf_counter()
                    outcome = self._write_level(plan, tiff, dicom_files)
                    outcome.seconds = time.perf_counter() - level_started
                    self.outcomes.append(outcome)
                if tiff is not None:
                    tiff.close()
                    tiff = None
            finally:
                if tiff is not None:
                    tiff.abort()
        self.timings["write_s"] = time.perf_counter() - self.started
        thumbnail_plan = self._thumbnail_plan()
        source_thumbnail = self.slide.thumbnail
        if "dicom" in self.options.outputs and (
            thumbnail_plan is not None or source_thumbnail is not None
        ):
            thumbnail_started = time.perf_counter()
            if thumbnail_plan is not None:
                image = self._decoded_level(thumbnail_plan)
                downsample = thumbnail_plan.downsample
            else:
                assert source_thumbnail is not None
                image = fit_within(source_thumbnail.read(), THUMBNAIL_MAX_PX)
                # Level-0 pixels per thumbnail pixel, across (the scanner rounds the height
                # on its own).
                downsample = self.level0_size[0] / image.shape[1]
            dicom_files.append(self._write_thumbnail(image, downsample))
            self._start_dciodvfy(dicom_files[-1])
            self.timings["thumbnail_s"] = time.perf_counter() - thumbnail_started
        return dicom_files

    def _write_level(
        self, plan: LevelPlan, tiff: PyramidTiffWriter | None, dicom_files: list[Path]
    ) -> _LevelOutcome:
        outcome = _LevelOutcome(plan)
        dicom_writer: DicomInstanceWriter | None = None
        generated: _GeneratedOutputs | None = None
        if plan.source is None:
            # Filled during the pass of the level above (or its generation job); only the TIFF
            # copy is left to write.
            base = self._base_plan(plan)
            if base.index in self.generation_jobs:
                self.generation_jobs[base.index].result()
            generated = self.generated.pop(plan.index)
            dicom_writer = generated.dicom
            tiles: Iterator[bytes] = generated.spool.tiles() if generated.spool else iter(())
        else:
            if plan.dicom is not None:
                path = self.out_dir / level_file_name(plan.index)
                dataset = build_dataset(self.description, self._geometry(plan, plan.dicom))
                dicom_writer = DicomInstanceWriter(
                    path, dataset, self._size_bound(plan, plan.dicom)
                )
            tiles = self._source_pass(plan, plan.source, dicom_writer, outcome)
        if dicom_writer is not None:
            dicom_files.append(dicom_writer.path)
        try:
            if tiff is not None and plan.tiff is not None:
                tiff.write_level(
                    plan.width,
                    plan.height,
                    plan.tiff.tile_width,
                    plan.tiff.tile_height,
                    plan.tiff.compression,
                    plan.tiff.dicom_photometric,
                    self._jpeg_subsampling(plan, plan.tiff),
                    plan.downsample,
                    _Pull(tiles),
                )
            for _ in tiles:  # no TIFF: drive the pass for the DICOM writer
                if tiff is not None:
                    raise RuntimeError("the TIFF writer left tiles of a level unwritten")
        except BaseException:
            if dicom_writer is not None:
                dicom_writer.abort()
            raise
        finally:
            if generated is not None and generated.spool is not None:
                generated.spool.handle.close()
                generated.spool.path.unlink(missing_ok=True)
        if dicom_writer is not None:
            dicom_writer.close()
            self._start_dciodvfy(dicom_writer.path)
        if generated is not None:
            self.progress.tick(generated.frames)
        return outcome

    def _source_pass(
        self,
        plan: LevelPlan,
        level: SourceLevel,
        dicom_writer: DicomInstanceWriter | None,
        outcome: _LevelOutcome,
    ) -> Iterator[bytes]:
        """Yields the level's TIFF tiles; pushes its DICOM frames; feeds generated levels
        unless a generation job does that on its own thread.

        Tile row by tile row: the pool decodes the next row (and encodes what the retilers
        cut) while this thread copies the current row's stored tiles into the outputs."""
        assert self.pool is not None
        pool = self.pool
        dicom, tiff = plan.dicom, plan.tiff
        tiff_queue: deque[bytes] = deque()
        dicom_copies = dicom_writer is not None and dicom is not None and dicom.mode == "copy"
        tiff_copies = tiff is not None and tiff.mode == "copy"
        copies = dicom_copies or tiff_copies
        streams: list[_EncodedStream] = []
        retiler: Retiler | None = None
        if _encodes(plan):

            def emit_encoded(frames: list[bytes]) -> None:
                if dicom_writer is not None and dicom is not None and dicom.mode == "encode":
                    dicom_writer.add_frames(frames)
                if tiff is not None and tiff.mode == "encode":
                    tiff_queue.extend(frames)

            encoded = _EncodedStream(pool, self.options.jpeg_quality, emit_encoded)
            streams.append(encoded)
            retiler = Retiler(plan.width, plan.height, self.options.tile_size_px, encoded.add_row)
        cascade: Downsampler | None = None
        if plan.index not in self.generation_jobs:
            cascade, cascade_streams = self._cascade(plan)
            streams += cascade_streams
        needs_pixels = retiler is not None or cascade is not None
        sampled: set[int] = set()
        proof = None
        if copies:
            outcome.sampled = sample_indices(level.tile_count, self._sample_count(level))
            sampled = set(outcome.sampled)
            proof = hashlib.sha256()
        check = _CopiedJpegCheck(level) if copies and level.coding.compression == "jpeg" else None
        rows: Iterator[tuple[Sequence[RawTile | None], list[Pixels], int]]
        if needs_pixels:
            rows = self._rows(level)
        else:
            # Views into a buffer the next run overwrites: each run is written out (and its
            # TIFF tiles taken) before the next is read. Only the proof's sample is decoded,
            # here: the pool may be busy generating.
            rows = (
                (level.read_raw_views(first, last), [], first) for first, last in level.copy_runs()
            )
        # ``row`` counts tile rows where pixels are needed, copy runs otherwise (unused then).
        for row, (raws, decoded, first) in enumerate(rows):
            if copies:
                frames: list[RawTile] = []
                for raw in raws:
                    if raw is None:
                        continue
                    frame = level.copy_bytes(raw)
                    if check is not None:
                        check(frame)
                    frames.append(frame)
                if dicom_copies and dicom_writer is not None:
                    dicom_writer.add_frames(frames)
                if tiff_copies:
                    # tifffile takes bytes (it reads anything else as pixels).
                    tiff_queue.extend(bytes(frame) for frame in frames)
            if proof is not None:
                for position, raw in enumerate(raws):
                    index = first + position
                    if index in sampled:
                        pixels = decoded[position] if decoded else level.decode(raw, index)
                        proof.update(pixels.tobytes())
            self.progress.tick(len(raws))
            if needs_pixels:
                band = self._band(level, row, decoded)
                if retiler is not None:
                    retiler.push(band)
                if cascade is not None:
                    cascade.push(band)
            for stream in streams:
                stream.collect(wait=False)
            while tiff_queue:
                yield tiff_queue.popleft()
        if retiler is not None:
            retiler.finish()
        if cascade is not None:
            cascade.finish()
        for stream in streams:
            stream.collect(wait=True)
        while tiff_queue:
            yield tiff_queue.popleft()
        if proof is not None:
            outcome.source_hash = proof.hexdigest()

    def _generation_job(self, plan: LevelPlan, level: SourceLevel) -> None:
        """Decode a copied level and write the generated levels below it (their DICOM
        instances, their TIFF spools): runs on its own thread while the main thread copies."""
        cascade, streams = self._cascade(plan)
        assert cascade is not None
        for row, (_, decoded, _) in enumerate(self._rows(level)):
            if self.stopping.is_set():
                raise _StoppedError
            cascade.push(self._band(level, row, decoded))
            for stream in streams:
                stream.collect(wait=False)
        cascade.finish()
        for stream in streams:
            stream.collect(wait=True)

    def _rows(self, level: SourceLevel) -> Iterator[tuple[list[bytes | None], list[Pixels], int]]:
        """Each tile row's stored tiles, its decoded tiles and its first index; the pool decodes
        row r + 1 while the caller works on row r."""
        assert self.pool is not None
        pool = self.pool

        def start(raws: list[bytes | None], first: int) -> list[Future[list[Pixels]]]:
            indices = list(range(first, first + len(raws)))
            tasks = []
            for at in range(0, len(indices), _TILES_PER_TASK):
                chunk = indices[at : at + _TILES_PER_TASK]
                chunk_raws = [raws[index - first] for index in chunk]
                tasks.append(pool.submit(_decode_tiles, level, chunk_raws, chunk))
            return tasks

        upcoming: tuple[list[bytes | None], int, list[Future[list[Pixels]]]] | None = None
        for first, last in _row_ranges(level):
            raws = level.read_raws(first, last)
            current = (raws, first, start(raws, first))
            if upcoming is not None:
                yield upcoming[0], [p for task in upcoming[2] for p in task.result()], upcoming[1]
            upcoming = current
        if upcoming is not None:
            yield upcoming[0], [p for task in upcoming[2] for p in task.result()], upcoming[1]

    @staticmethod
    def _band(level: SourceLevel, row: int, decoded: list[Pixels]) -> Pixels:
        """The decoded tile row as a band of the level's width (edge padding cut off)."""
        top = row * level.tile_height
        band_height = min(level.tile_height, level.height - top)
        return np.concatenate(decoded, axis=1)[:band_height, : level.width]

    def _cascade(self, plan: LevelPlan) -> tuple[Downsampler | None, list[_EncodedStream]]:
        """The downsampling chain of the generated levels right below ``plan``, and the
        encoders that write their tiles."""
        assert self.pool is not None
        children = self._children(plan)
        if not children:
            return None, []
        tile_px = self.options.tile_size_px
        streams: list[_EncodedStream] = []
        downstream: Downsampler | None = None
        for child in reversed(children):
            outputs = self._open_generated(child)
            stream = _EncodedStream(self.pool, self.options.jpeg_quality, outputs.emit)
            streams.append(stream)
            retiler = Retiler(child.width, child.height, tile_px, stream.add_row)
            parent = self.plans[child.index - 1]
            fanout = _Fanout(retiler, downstream)
            downstream = Downsampler(parent.width, parent.height, fanout, fanout.finish)
        return downstream, streams

    def _children(self, plan: LevelPlan) -> list[LevelPlan]:
        """The generated levels right below ``plan`` (down to the next source level)."""
        children: list[LevelPlan] = []
        for candidate in self.plans[plan.index + 1 :]:
            if candidate.source is not None:
                break
            children.append(candidate)
        return children

    def _base_plan(self, plan: LevelPlan) -> LevelPlan:
        """The source level a generated level is downsampled from, through its parents."""
        while plan.source is None and plan.parent is not None:
            plan = self.plans[plan.parent]
        return plan

    def _open_generated(self, plan: LevelPlan) -> _GeneratedOutputs:
        outputs = _GeneratedOutputs(dicom=None, spool=None)
        self.generated[plan.index] = outputs
        if plan.dicom is not None:
            path = self.out_dir / level_file_name(plan.index)
            dataset = build_dataset(self.description, self._geometry(plan, plan.dicom))
            outputs.dicom = DicomInstanceWriter(path, dataset, self._size_bound(plan, plan.dicom))
        if plan.tiff is not None:
            spool_path = self.out_dir / f"{_SPOOL_PREFIX}{plan.index}"
            outputs.spool = _Spool(spool_path, spool_path.open("wb", buffering=4 * 1024 * 1024))
        return outputs

    def _drop_generated(self) -> None:
        """Spools always go; a generated instance still open here belongs to a failed run."""
        for outputs in self.generated.values():
            if outputs.dicom is not None:
                outputs.dicom.abort()
            if outputs.spool is not None:
                outputs.spool.handle.close()
                outputs.spool.path.unlink(missing_ok=True)
        self.generated.clear()

    def _start_dciodvfy(self, path: Path) -> None:
        if self.options.run_dciodvfy:
            self.dciodvfy_runs.append(start_dciodvfy(path))

    def _stop_dciodvfy(self) -> None:
        for run in self.dciodvfy_runs:
            run.stop()

    # -- helpers --------------------------------------------------------------------------

    def _sample_count(self, level: SourceLevel) -> int:
        if self.options.verify == "full":
            return level.tile_count
        return min(level.tile_count, self.options.sample_tiles_per_level)

    def _geometry(self, plan: LevelPlan, encoding: Encoding) -> InstanceGeometry:
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

    def _size_bound(self, plan: LevelPlan, encoding: Encoding) -> int:
        frames = _grid(plan.width, plan.height, encoding.tile_width, encoding.tile_height)
        if encoding.mode == "copy" and plan.source is not None:
            tables = len(plan.source.coding.jpeg_tables or b"")
            return plan.source.stored_bytes + frames * (tables + _COPY_OVERHEAD_BYTES)
        raw = encoding.tile_width * encoding.tile_height * 3
        return int(frames * (raw * _ENCODED_BOUND_FACTOR + 8))

    def _jpeg_subsampling(self, plan: LevelPlan, encoding: Encoding) -> tuple[int, int] | None:
        if encoding.compression != "jpeg":
            return None
        if encoding.mode == "encode":
            return JPEG_SUBSAMPLING
        assert plan.source is not None
        return plan.source.coding.jpeg_frame

    # -- thumbnail, proof, gate, report --------------------------------------------------

    def _thumbnail_plan(self) -> LevelPlan | None:
        """The level the thumbnail instance repeats: the largest within THUMBNAIL_MAX_PX, else
        the smallest level when the pyramid was extended to one tile; None when the source's
        levels are kept as they are and none is that small (decoding a whole large level for a
        thumbnail costs more than the copy: the source's own thumbnail image serves then)."""
        candidates = [p for p in self.plans if max(p.width, p.height) <= THUMBNAIL_MAX_PX]
        if candidates:
            return candidates[0]
        return self.plans[-1] if self.options.extend_pyramid else None

    def _decoded_level(self, plan: LevelPlan) -> Pixels:
        """A small written level, decoded whole from its DICOM instance."""
        with ExitStack() as stack:
            written = open_source([self.out_dir / level_file_name(plan.index)])
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

    def _write_thumbnail(self, image: Pixels, downsample: float) -> Path:
        height, width = image.shape[:2]
        geometry = InstanceGeometry(
            name="thumbnail",
            flavor="THUMBNAIL",
            width=width,
            height=height,
            tile_width=width,
            tile_height=height,
            compression="jpeg",
            photometric="YBR_FULL_422",
            instance_number=len(self.plans) + 1,
            derived=True,
            downsample=downsample,
        )
        path = self.out_dir / THUMBNAIL_NAME
        data = encode_jpeg(image, self.options.jpeg_quality)
        with DicomInstanceWriter(
            path, build_dataset(self.description, geometry), len(data) + 16
        ) as writer:
            writer.add_frame(data)
        return path

    def _verify_and_report(
        self, dicom_files: tuple[Path, ...], tiff_path: Path | None
    ) -> ConversionResult:
        verify_started = time.perf_counter()
        proofs: dict[int, dict[str, str]] = {}
        for outcome in self.outcomes:
            if outcome.source_hash is None:
                continue
            outputs = {"source": outcome.source_hash}
            for name, encoding, path in (
                ("dicom", outcome.plan.dicom, self.out_dir / level_file_name(outcome.plan.index)),
                ("tiff", outcome.plan.tiff, tiff_path),
            ):
                if encoding is None or encoding.mode != "copy" or path is None:
                    continue
                level_in_file = 0 if name == "dicom" else outcome.plan.index
                outputs[name] = prove_level(path, level_in_file, outcome.sampled)
                if outputs[name] != outcome.source_hash:
                    raise ConformanceError(
                        f"level {outcome.plan.index}: decoded pixels of the {name} output differ "
                        "from the source on a lossless copy"
                    )
            proofs[outcome.plan.index] = outputs
        self.timings["proof_s"] = time.perf_counter() - verify_started
        dciodvfy_warnings: dict[str, list[str]] = {}
        if self.dciodvfy_runs:
            gate_started = time.perf_counter()
            for run in self.dciodvfy_runs:
                warnings = run.result()
                if warnings:
                    dciodvfy_warnings[run.path.name] = warnings
            # Only the wait after the last write: each run started when its file was closed.
            self.timings["dciodvfy_wait_s"] = time.perf_counter() - gate_started
        reopen: dict[str, object] = {}
        if self.options.reopen_check:
            reopen_started = time.perf_counter()
            reopen = check_outputs_reopen(
                [(p.width, p.height) for p in self.plans],
                tuple(f for f in dicom_files if f.name != THUMBNAIL_NAME),
                tiff_path,
                self.options.tile_size_px,
            )
            self.timings["reopen_s"] = time.perf_counter() - reopen_started
        self.timings["total_s"] = time.perf_counter() - self.started
        reports = tuple(self._report(outcome, proofs) for outcome in self.outcomes)
        provenance = self._provenance(reports, proofs, dciodvfy_warnings, reopen)
        return ConversionResult(
            dicom_files=dicom_files,
            tiff_file=tiff_path,
            levels=reports,
            provenance=provenance,
            warnings=tuple(self.warnings),
        )

    def _report(
        self, outcome: _LevelOutcome, proofs: dict[int, dict[str, str]]
    ) -> ConvertedLevelReport:
        plan = outcome.plan
        main = plan.dicom or plan.tiff
        assert main is not None
        tiff_differs = plan.dicom is not None and plan.tiff is not None and plan.tiff != plan.dicom
        mpp = self.mpp
        source_level = (
            plan.source.index if plan.source is not None else self._base_source_index(plan)
        )
        return ConvertedLevelReport(
            index=plan.index,
            width_px=plan.width,
            height_px=plan.height,
            tile_size_px=main.tile_width,
            mpp_x=mpp[0] * plan.downsample if mpp else None,
            mpp_y=mpp[1] * plan.downsample if mpp else None,
            compression=main.compression,
            lossless_copy=main.mode == "copy",
            generated=plan.generated,
            pixel_proof_sha256=proofs.get(plan.index, {}).get("source")
            if main.mode == "copy"
            else None,
            tiff_compression=plan.tiff.compression if tiff_differs and plan.tiff else None,
            tiff_lossless_copy=(plan.tiff.mode == "copy") if tiff_differs and plan.tiff else None,
            source_level=source_level,
        )

    def _base_source_index(self, plan: LevelPlan) -> int | None:
        parent = plan
        while parent.source is None and parent.parent is not None:
            parent = self.plans[parent.parent]
        return parent.source.index if parent.source is not None else None

    def _provenance(
        self,
        reports: tuple[ConvertedLevelReport, ...],
        proofs: dict[int, dict[str, str]],
        dciodvfy_warnings: dict[str, list[str]],
        reopen: dict[str, object],
    ) -> dict[str, object]:
        levels: list[dict[str, object]] = []
        for outcome, report in zip(self.outcomes, reports, strict=True):
            plan = outcome.plan
            levels.append(
                {
                    "index": plan.index,
                    "size_px": [plan.width, plan.height],
                    "source_level": report.source_level,
                    "generated_from_level": plan.parent,
                    "dicom": _encoding_record(plan.dicom),
                    "tiff": _encoding_record(plan.tiff),
                    "proof": {
                        "sampled_tiles": outcome.sampled,
                        "sha256": proofs.get(plan.index),
                    }
                    if outcome.source_hash is not None
                    else None,
                    "seconds": round(outcome.seconds, 3),
                }
            )
        provenance: dict[str, object] = {
            "source": {
                "format": self.slide.format,
                "levels": [
                    {
                        "index": level.index,
                        "size_px": [level.width, level.height],
                        "tile_px": [level.tile_width, level.tile_height],
                        "tiled": level.tiled,
                        "compression": str(level.coding.compression),
                    }
                    for level in self.slide.levels
                ],
                "mpp": list(self.slide.mpp) if self.slide.mpp else None,
                "objective_power": self.slide.objective_power,
                "icc_profile_sha256": hashlib.sha256(self.slide.icc_profile).hexdigest()
                if self.slide.icc_profile
                else None,
            },
            "options": {
                "outputs": sorted(self.options.outputs),
                "tile_size_px": self.options.tile_size_px,
                "jpeg_quality": self.options.jpeg_quality,
                "verify": self.options.verify,
                "sample_tiles_per_level": self.options.sample_tiles_per_level,
                "fill_pyramid_gaps": self.options.fill_pyramid_gaps,
                "extend_pyramid": self.options.extend_pyramid,
            },
            "levels": levels,
            "dciodvfy_warnings": dciodvfy_warnings,
            "reopen": reopen,
            "software": _software_versions(),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
        }
        json.dumps(provenance)  # fail here, not in the service, if something is not JSON
        return provenance


class _Pull:
    """Hands tifffile the level's tiles without handing it the generator: tifffile re-yields
    an iterator with ``yield from``, which closes a generator when it is dropped, and the pass
    must run on after the last tile (the generated levels are finished there)."""

    def __init__(self, tiles: Iterator[bytes]) -> None:
        self._tiles = tiles

    def __iter__(self) -> _Pull:
        return self

    def __next__(self) -> bytes:
        return next(self._tiles)


class _Fanout:
    """Sends a downsampled band to its level's retiler and to the next downsampler."""

    def __init__(self, retiler: Retiler, downstream: Downsampler | None) -> None:
        self._retiler = retiler
        self._downstream = downstream

    def __call__(self, band: Pixels) -> None:
        self._retiler.push(band)
        if self._downstream is not None:
            self._downstream.push(band)

    def finish(self) -> None:
        self._retiler.finish()
        if self._downstream is not None:
            self._downstream.finish()


class _StoppedError(Exception):
    """A generation job stops because the conversion failed elsewhere."""


def _row_ranges(level: SourceLevel) -> Iterator[tuple[int, int]]:
    """First and past-the-last tile index of each tile row, top to bottom."""
    for row in range(level.rows):
        first = row * level.columns
        yield first, min(first + level.columns, level.tile_count)


def _encodes(plan: LevelPlan) -> bool:
    return any(e is not None and e.mode == "encode" for e in (plan.dicom, plan.tiff))


def _encoding_record(encoding: Encoding | None) -> dict[str, object] | None:
    if encoding is None:
        return None
    return {
        "mode": encoding.mode,
        "compression": encoding.compression,
        "tile_px": [encoding.tile_width, encoding.tile_height],
        "photometric": encoding.dicom_photometric,
        "reason": encoding.reason,
    }


def _grid(width: int, height: int, tile_w: int, tile_h: int | None = None) -> int:
    return math.ceil(width / tile_w) * math.ceil(height / (tile_h or tile_w))


def _check_copied_jpeg(frame: bytes, level: SourceLevel) -> None:
    """Every copied JPEG tile must be the baseline, full-size tile the level declares."""
    info = parse_jpeg_frame(frame)
    if (
        not info.baseline
        or info.components != 3
        or (info.width, info.height) != (level.tile_width, level.tile_height)
        or info.sampling[0] != level.coding.jpeg_frame
    ):
        raise ConformanceError("a copied JPEG tile differs from its level's frame header")


def _software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("slidestream-wsi", "tifffile", "imagecodecs", "pydicom", "numpy"):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions

"""One conversion: plan the pyramid, stream every level once into the requested outputs, then
prove and check what was written.

Each output level is produced in one pass over its source tiles, in row-major order
(:mod:`~.copy_pass`). Copied tiles go straight from the source file into the DICOM instance
and/or the TIFF level; decoded rows (only when some output re-encodes the level, or a generated
level hangs below it) feed the retiler and the downsampling chain of the generated levels
(:mod:`~.generation`), whose encoded tiles are spooled to a scratch file next to the outputs
until their turn comes. The TIFF writer pulls tiles (tifffile takes an iterator); the DICOM
writer is pushed the same tiles, so both outputs are written in the same pass. The thumbnail
(:mod:`~.thumbnail`), the gate (:mod:`~.gate`) and the report (:mod:`~.provenance`) follow.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from slidestream_wsi.convert.copy_pass import LevelOutcome, SourcePass
from slidestream_wsi.convert.dicom_out import DicomInstanceWriter, SlideDescription, derived_uid
from slidestream_wsi.convert.gate import DciodvfyRuns, prove_copies
from slidestream_wsi.convert.generation import LevelGeneration
from slidestream_wsi.convert.gil import short_gil_switch_interval
from slidestream_wsi.convert.icc import srgb_profile
from slidestream_wsi.convert.model import ConversionOptions, ConversionResult, DicomIdentity
from slidestream_wsi.convert.plan import LevelPlan, plan_levels, pyramid_tile_px
from slidestream_wsi.convert.provenance import Checks, level_report, provenance, timings_report
from slidestream_wsi.convert.targets import (
    THUMBNAIL_NAME,
    TIFF_NAME,
    GeneratedOutputs,
    LevelTargets,
    grid,
    jpeg_subsampling,
    remove_previous_outputs,
)
from slidestream_wsi.convert.thumbnail import write_thumbnail
from slidestream_wsi.convert.tiff_out import PyramidTiffWriter
from slidestream_wsi.convert.tile_pool import WORKERS
from slidestream_wsi.convert.verify import (
    check_outputs_reopen,
    preload_reopen_readers,
    require_dciodvfy,
)
from slidestream_wsi.errors import MissingPixelSpacingError
from slidestream_wsi.pyramid import SourceSlide, open_source

ProgressCallback = Callable[[int, int], None]
_LOSSLESS_SOURCE_CODINGS = ("none", "lzw", "deflate")


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
    with short_gil_switch_interval():
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
    remove_previous_outputs(out_dir)
    slide = open_source([Path(s) for s in sources])
    try:
        return _Conversion(slide, out_dir, identity, options, progress, started).run()
    finally:
        slide.close()


class _Progress:
    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self._callback = callback

    def tick(self, count: int = 1) -> None:
        self.done += count
        if self._callback is not None:
            self._callback(self.done, self.total)


class _Conversion:
    """Orchestration: writes the levels in order, then the thumbnail, then gates and reports."""

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
        self.warnings: list[str] = []
        tile_px = pyramid_tile_px(slide, options)
        if tile_px != options.tile_size_px:
            self.warnings.append(f"tiles of {tile_px} px throughout, as the source's level 0")
            options = replace(options, tile_size_px=tile_px)
        self.options = options
        self.started = started
        self.plans = plan_levels(slide, options)
        if slide.icc_profile is None and "dicom" in options.outputs:
            self.warnings.append("source has no ICC profile: sRGB assumed in DICOM")
        self.mpp = self._spacing()
        self.targets = LevelTargets(out_dir, self._describe(identity))
        self.outcomes: list[LevelOutcome] = []
        self.timings: dict[str, float] = {}
        self.dciodvfy = DciodvfyRuns(options.run_dciodvfy)
        self.progress = _Progress(_tile_total(self.plans, options.tile_size_px), progress)

    def _spacing(self) -> tuple[float, float] | None:
        """The level-0 spacing written, or the assumed one the options give (with a warning);
        DICOM WSI cannot be written without one."""
        mpp, assumed = self.slide.mpp, self.options.assumed_mpp_um
        if mpp is None and assumed is not None:
            self.warnings.append(f"source has no pixel spacing: {assumed} µm assumed as asked")
            return (assumed, assumed)
        if mpp is None and "dicom" in self.options.outputs:
            raise MissingPixelSpacingError("source has no pixel spacing, which DICOM WSI requires")
        if mpp is None:
            self.warnings.append("source has no pixel spacing: none written")
        return mpp

    def _describe(self, identity: DicomIdentity) -> SlideDescription:
        slide, options, level0 = self.slide, self.options, self.plans[0]
        icc = slide.icc_profile
        return SlideDescription(
            identity=identity,
            mpp=self.mpp,
            level0_size=(level0.width, level0.height),
            objective_power=slide.objective_power,
            icc_profile=icc or srgb_profile(),
            color_space=None if icc else "SRGB",
            options_key=f"tile={options.tile_size_px};q={options.jpeg_quality}",
            source_lossy=any(
                level.coding.compression not in _LOSSLESS_SOURCE_CODINGS for level in slide.levels
            ),
        )

    def run(self) -> ConversionResult:
        with ExitStack() as gate:
            # dciodvfy runs while the next level is written; a failed conversion stops them.
            gate.callback(self.dciodvfy.stop)
            dicom_files = self._write_outputs()
            return self._verify_and_report(tuple(dicom_files), self._tiff_path())

    def _tiff_path(self) -> Path | None:
        return self.out_dir / TIFF_NAME if "tiff" in self.options.outputs else None

    def _write_outputs(self) -> list[Path]:
        dicom_files: list[Path] = []
        with ExitStack() as stack:
            pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="convert")
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            generation = LevelGeneration(
                self.plans,
                pool,
                self.targets,
                tile_px=self.options.tile_size_px,
                quality=self.options.jpeg_quality,
            )
            stack.callback(generation.discard)
            # Levels generated below a copied level do not wait for the copy: one thread
            # decodes and downsamples (on the pool) while this one copies, level after level.
            generator = ThreadPoolExecutor(1, thread_name_prefix="convert-generate")
            stack.callback(generator.shutdown, wait=True, cancel_futures=True)
            stack.callback(generation.stopping.set)
            generation.start_jobs(generator)
            self._write_levels(pool, generation, dicom_files)
        self.timings["write_s"] = time.perf_counter() - self.started
        thumbnail_started = time.perf_counter()
        thumbnail = write_thumbnail(
            self.plans,
            self.options,
            self.slide.thumbnail,
            self.out_dir,
            self.targets.description,
        )
        if thumbnail is not None:
            dicom_files.append(thumbnail)
            self.dciodvfy.start(thumbnail)
            self.timings["thumbnail_s"] = time.perf_counter() - thumbnail_started
        return dicom_files

    def _write_levels(
        self, pool: Executor, generation: LevelGeneration, dicom_files: list[Path]
    ) -> None:
        tiff = self._open_tiff()
        try:
            for plan in self.plans:
                level_started = time.perf_counter()
                outcome = self._write_level(plan, tiff, dicom_files, pool, generation)
                outcome.seconds = time.perf_counter() - level_started
                self.outcomes.append(outcome)
            if tiff is not None:
                tiff.close()
                tiff = None
        finally:
            if tiff is not None:
                tiff.abort()

    def _open_tiff(self) -> PyramidTiffWriter | None:
        tiff_path = self._tiff_path()
        if tiff_path is None:
            return None
        # The OME document's UUID, derived like the DICOM UIDs: a redelivery writes the same.
        document_uid = derived_uid(self.targets.description.identity, "ome-document")
        return PyramidTiffWriter(
            tiff_path,
            len(self.plans),
            self.mpp,
            self.slide.icc_profile,
            self.slide.objective_power,
            uuid.UUID(int=int(document_uid.split(".")[-1]) % 2**128),
        )

    def _write_level(
        self,
        plan: LevelPlan,
        tiff: PyramidTiffWriter | None,
        dicom_files: list[Path],
        pool: Executor,
        generation: LevelGeneration,
    ) -> LevelOutcome:
        outcome = LevelOutcome(plan)
        dicom_writer: DicomInstanceWriter | None = None
        generated: GeneratedOutputs | None = None
        tiles: Iterator[bytes]
        if plan.source is None:
            # Filled during the pass of the level above (or its generation job); only the TIFF
            # copy is left to write.
            generated = generation.take(plan)
            dicom_writer = generated.dicom
            tiles = generated.spool.tiles() if generated.spool else iter(())
        else:
            if plan.dicom is not None:
                dicom_writer = self.targets.open_instance(plan, plan.dicom)
            tiles = SourcePass(
                plan,
                dicom_writer,
                outcome,
                pool=pool,
                generation=generation,
                options=self.options,
                tick=self.progress.tick,
            ).tiles()
        if dicom_writer is not None:
            dicom_files.append(dicom_writer.path)
        try:
            self._write_tiff_level(plan, tiff, tiles)
        except BaseException:
            if dicom_writer is not None:
                dicom_writer.abort()
            raise
        finally:
            if generated is not None and generated.spool is not None:
                generated.spool.discard()
        if dicom_writer is not None:
            dicom_writer.close()
            self.dciodvfy.start(dicom_writer.path)
        if generated is not None:
            self.progress.tick(generated.frames)
        return outcome

    @staticmethod
    def _write_tiff_level(
        plan: LevelPlan, tiff: PyramidTiffWriter | None, tiles: Iterator[bytes]
    ) -> None:
        """Hand the level's tiles to the TIFF writer; without a TIFF, drive the pass for the
        DICOM writer."""
        if tiff is not None and plan.tiff is not None:
            tiff.write_level(
                plan.width,
                plan.height,
                plan.tiff.tile_width,
                plan.tiff.tile_height,
                plan.tiff.compression,
                plan.tiff.dicom_photometric,
                jpeg_subsampling(plan, plan.tiff),
                plan.downsample,
                _Pull(tiles),
            )
        for _ in tiles:
            if tiff is not None:
                raise RuntimeError("the TIFF writer left tiles of a level unwritten")

    def _verify_and_report(
        self, dicom_files: tuple[Path, ...], tiff_path: Path | None
    ) -> ConversionResult:
        verify_started = time.perf_counter()
        proofs = prove_copies(self.outcomes, self.out_dir, tiff_path)
        self.timings["proof_s"] = time.perf_counter() - verify_started
        dciodvfy_warnings: dict[str, list[str]] = {}
        if self.dciodvfy:
            gate_started = time.perf_counter()
            dciodvfy_warnings = self.dciodvfy.warnings()
            # Only the wait after the last write: each run started when its file was closed.
            self.timings["dciodvfy_wait_s"] = time.perf_counter() - gate_started
        reopen = self._reopen(dicom_files, tiff_path)
        self.timings["total_s"] = time.perf_counter() - self.started
        reports = [level_report(o, proofs, self.mpp, self.plans) for o in self.outcomes]
        record = provenance(
            self.slide,
            self.options,
            list(zip(self.outcomes, reports, strict=True)),
            proofs,
            Checks(dciodvfy_warnings, reopen),
            self.warnings,
        )
        return ConversionResult(
            dicom_files=dicom_files,
            tiff_file=tiff_path,
            levels=tuple(reports),
            provenance=record,
            warnings=tuple(self.warnings),
            timings=timings_report(self.timings, self.outcomes),
        )

    def _reopen(self, dicom_files: tuple[Path, ...], tiff_path: Path | None) -> dict[str, object]:
        if not self.options.reopen_check:
            return {}
        reopen_started = time.perf_counter()
        reopen = check_outputs_reopen(
            [(p.width, p.height) for p in self.plans],
            tuple(f for f in dicom_files if f.name != THUMBNAIL_NAME),
            tiff_path,
            self.options.tile_size_px,
        )
        self.timings["reopen_s"] = time.perf_counter() - reopen_started
        return reopen


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


def _tile_total(plans: list[LevelPlan], tile_px: int) -> int:
    """Tiles the progress counts: a source level's stored tiles, a generated level's own."""
    total = 0
    for plan in plans:
        if plan.source is not None:
            total += plan.source.tile_count
        else:
            total += grid(plan.width, plan.height, tile_px)
    return total

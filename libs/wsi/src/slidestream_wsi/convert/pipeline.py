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
import platform
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
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
from slidestream_wsi.convert.jpeg import parse_jpeg_frame
from slidestream_wsi.convert.model import (
    ConversionOptions,
    ConversionResult,
    ConvertedLevelReport,
    DicomIdentity,
)
from slidestream_wsi.convert.pixels import JPEG_SUBSAMPLING, Downsampler, Retiler, encode_jpeg
from slidestream_wsi.convert.plan import Encoding, LevelPlan, plan_levels
from slidestream_wsi.convert.source import Pixels, SourceLevel, SourceSlide, open_source
from slidestream_wsi.convert.tiff_out import PyramidTiffWriter
from slidestream_wsi.convert.verify import (
    check_outputs_reopen,
    prove_level,
    run_dciodvfy,
    sample_indices,
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
ProgressCallback = Callable[[int, int], None]


def level_file_name(index: int) -> str:
    return f"level-{index}.dcm"


@dataclass
class _Spool:
    """Encoded tiles of a generated level, waiting for their level's turn."""

    path: Path
    handle: BinaryIO
    sizes: list[int] = field(default_factory=list)

    def add(self, data: bytes) -> None:
        self.handle.write(data)
        self.sizes.append(len(data))

    def tiles(self) -> Iterator[bytes]:
        self.handle.flush()
        with self.path.open("rb", buffering=4 * 1024 * 1024) as reader:
            for size in self.sizes:
                yield reader.read(size)


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
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous_outputs(out_dir)
    slide = open_source([Path(s) for s in sources])
    try:
        return _Conversion(slide, out_dir, identity, options, progress, started).run()
    finally:
        slide.close()


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
        self.spools: dict[int, _Spool] = {}
        self.outcomes: list[_LevelOutcome] = []
        self.timings: dict[str, float] = {}
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
        dicom_files: list[Path] = []
        tiff_path = self.out_dir / TIFF_NAME if "tiff" in self.options.outputs else None
        with ExitStack() as stack:
            stack.callback(self._drop_spools)
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
        if "dicom" in self.options.outputs:
            dicom_files.append(self._write_thumbnail())
        return self._verify_and_report(tuple(dicom_files), tiff_path)

    def _write_level(
        self, plan: LevelPlan, tiff: PyramidTiffWriter | None, dicom_files: list[Path]
    ) -> _LevelOutcome:
        outcome = _LevelOutcome(plan)
        dicom_writer: DicomInstanceWriter | None = None
        if plan.dicom is not None:
            path = self.out_dir / level_file_name(plan.index)
            dataset = build_dataset(self.description, self._geometry(plan, plan.dicom))
            dicom_writer = DicomInstanceWriter(path, dataset, self._size_bound(plan, plan.dicom))
            dicom_files.append(path)
        try:
            if plan.source is not None:
                tiles = self._source_pass(plan, plan.source, dicom_writer, outcome)
            else:
                tiles = self._generated_pass(plan, dicom_writer)
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
        if dicom_writer is not None:
            dicom_writer.close()
        return outcome

    def _source_pass(
        self,
        plan: LevelPlan,
        level: SourceLevel,
        dicom_writer: DicomInstanceWriter | None,
        outcome: _LevelOutcome,
    ) -> Iterator[bytes]:
        """Yields the level's TIFF tiles; pushes its DICOM frames; feeds generated levels."""
        dicom, tiff = plan.dicom, plan.tiff
        tiff_queue: deque[bytes] = deque()
        copies = any(e is not None and e.mode == "copy" for e in (dicom, tiff))
        encodes = any(e is not None and e.mode == "encode" for e in (dicom, tiff))
        quality = self.options.jpeg_quality

        def encoded_row(tiles: list[Pixels]) -> None:
            for tile in tiles:
                data = encode_jpeg(tile, quality)
                if dicom_writer is not None and dicom is not None and dicom.mode == "encode":
                    dicom_writer.add_frame(data)
                if tiff is not None and tiff.mode == "encode":
                    tiff_queue.append(data)

        retiler = (
            Retiler(plan.width, plan.height, self.options.tile_size_px, encoded_row)
            if encodes
            else None
        )
        cascade = self._cascade(plan)
        needs_pixels = retiler is not None or cascade is not None
        sampled: set[int] = set()
        proof = None
        if copies:
            outcome.sampled = sample_indices(level.tile_count, self._sample_count(level))
            sampled = set(outcome.sampled)
            proof = hashlib.sha256()
        for row in range(level.rows):
            decoded: list[Pixels] = []
            for column in range(level.columns):
                index = row * level.columns + column
                raw = level.read_raw(index)
                pixels = level.decode(raw, index) if needs_pixels or index in sampled else None
                if pixels is not None:
                    decoded.append(pixels)
                if copies and raw is not None:
                    frame = level.copy_bytes(raw)
                    if level.coding.compression == "jpeg":
                        _check_copied_jpeg(frame, level)
                    if dicom_writer is not None and dicom is not None and dicom.mode == "copy":
                        dicom_writer.add_frame(frame)
                    if tiff is not None and tiff.mode == "copy":
                        tiff_queue.append(frame)
                if proof is not None and index in sampled and pixels is not None:
                    proof.update(pixels.tobytes())
            self.progress.tick(level.columns)
            if needs_pixels:
                top = row * level.tile_height
                band_height = min(level.tile_height, level.height - top)
                band = np.concatenate(decoded, axis=1)[:band_height, : level.width]
                if retiler is not None:
                    retiler.push(band)
                if cascade is not None:
                    cascade.push(band)
            while tiff_queue:
                yield tiff_queue.popleft()
        if retiler is not None:
            retiler.finish()
        if cascade is not None:
            cascade.finish()
        while tiff_queue:
            yield tiff_queue.popleft()
        if proof is not None:
            outcome.source_hash = proof.hexdigest()

    def _cascade(self, plan: LevelPlan) -> Downsampler | None:
        """The downsampling chain of the generated levels right below ``plan``."""
        children: list[LevelPlan] = []
        for candidate in self.plans[plan.index + 1 :]:
            if candidate.source is not None:
                break
            children.append(candidate)
        if not children:
            return None
        quality = self.options.jpeg_quality
        tile_px = self.options.tile_size_px
        downstream: Downsampler | None = None
        for child in reversed(children):
            spool_path = self.out_dir / f"{_SPOOL_PREFIX}{child.index}"
            spool = _Spool(spool_path, spool_path.open("wb", buffering=4 * 1024 * 1024))
            self.spools[child.index] = spool

            def spool_row(tiles: list[Pixels], spool: _Spool = spool) -> None:
                for tile in tiles:
                    spool.add(encode_jpeg(tile, quality))

            retiler = Retiler(child.width, child.height, tile_px, spool_row)
            parent = self.plans[child.index - 1]
            fanout = _Fanout(retiler, downstream)
            downstream = Downsampler(parent.width, parent.height, fanout, fanout.finish)
        return downstream

    def _generated_pass(
        self, plan: LevelPlan, dicom_writer: DicomInstanceWriter | None
    ) -> Iterator[bytes]:
        spool = self.spools[plan.index]
        tiff_wanted = plan.tiff is not None
        for data in spool.tiles():
            if dicom_writer is not None:
                dicom_writer.add_frame(data)
            self.progress.tick()
            if tiff_wanted:
                yield data

    def _drop_spools(self) -> None:
        for spool in self.spools.values():
            spool.handle.close()
            spool.path.unlink(missing_ok=True)
        self.spools.clear()

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

    def _write_thumbnail(self) -> Path:
        candidates = [p for p in self.plans if max(p.width, p.height) <= THUMBNAIL_MAX_PX]
        plan = candidates[0] if candidates else self.plans[-1]
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
        image = np.ascontiguousarray(image[: plan.height, : plan.width])
        geometry = InstanceGeometry(
            name="thumbnail",
            flavor="THUMBNAIL",
            width=plan.width,
            height=plan.height,
            tile_width=plan.width,
            tile_height=plan.height,
            compression="jpeg",
            photometric="YBR_FULL_422",
            instance_number=len(self.plans) + 1,
            derived=True,
            downsample=plan.downsample,
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
        if self.options.run_dciodvfy and dicom_files:
            gate_started = time.perf_counter()
            for path in dicom_files:
                warnings = run_dciodvfy(path)
                if warnings:
                    dciodvfy_warnings[path.name] = warnings
            self.timings["dciodvfy_s"] = time.perf_counter() - gate_started
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

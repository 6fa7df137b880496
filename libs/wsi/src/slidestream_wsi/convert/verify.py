"""The conformance gate of a conversion: pixel proofs, ``dciodvfy``, independent re-opening.

* Proof: for a level whose tiles were copied, the SHA-256 of the decoded pixels of a sample of
  tiles (every tile with ``verify="full"``), in tile order, must be the same for the source and
  for each output read back from disk through its own container (our DICOM frame reader and
  tifffile): a copy that changed a pixel fails the slide.
* ``dciodvfy`` (David Clunie's dicom3tools, Debian package ``dicom3tools``) validates each
  instance against the IOD: its errors fail the slide, its warnings are recorded.
* OpenSlide, tiffslide and wsidicom re-open the outputs: every level's size must match the plan
  and the first tile of every level must match our own decode within the rounding that two
  JPEG decoders may differ by.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from slidestream_wsi.errors import ConformanceError, ConformanceToolMissing
from slidestream_wsi.pyramid import SourceLevel, open_source

DCIODVFY = "dciodvfy"
REOPEN_READERS = ("openslide", "tiffslide", "wsidicom")
DCIODVFY_TIMEOUT_S = 600
MAX_MEAN_ABS_DIFFERENCE = 2.0
"""Largest mean absolute difference (0-255 scale) between two decoders of the same tile:
libjpeg builds differ in IDCT and chroma upsampling by a level or two, never more on average."""
_DCIODVFY_IGNORED_WARNINGS = (
    # Our private-free datasets still draw this generic note on DICOM 2022 dictionaries.
    "Dicom dataset contains attributes not present in standard DICOM IOD",
)


def sample_indices(tile_count: int, count: int) -> list[int]:
    """``count`` tile indices spread evenly over the level, first and last included."""
    if count >= tile_count:
        return list(range(tile_count))
    if count <= 1:
        return [0][:count]
    step = (tile_count - 1) / (count - 1)
    return sorted({round(i * step) for i in range(count)})


def hash_tiles(level: SourceLevel, indices: Sequence[int]) -> str:
    digest = hashlib.sha256()
    for index in indices:
        digest.update(level.decode(level.read_raw(index), index).tobytes())
    return digest.hexdigest()


def prove_level(path: Path, level_index: int, indices: Sequence[int]) -> str:
    """The proof hash of ``indices`` of pyramid level ``level_index`` of a written output."""
    written = open_source([path])
    try:
        return hash_tiles(written.levels[level_index], indices)
    finally:
        written.close()


def require_dciodvfy() -> str:
    """The dciodvfy binary; :class:`ConformanceToolMissing` when it is not installed."""
    binary = shutil.which(DCIODVFY)
    if binary is None:
        raise ConformanceToolMissing("dciodvfy (Debian package dicom3tools) is not installed")
    return binary


class DciodvfyRun:
    """One dciodvfy process, started as soon as its file is written and judged later, so that
    it runs while the next level is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in result()/stop()
        self._process = subprocess.Popen(
            [require_dciodvfy(), "-new", str(path)],
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    def result(self) -> list[str]:
        """Raise :class:`ConformanceError` on errors, return the warnings."""
        try:
            returncode = self._process.wait(timeout=DCIODVFY_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise ConformanceError(f"dciodvfy: {self.path.name}: no verdict in time") from exc
        self._output.seek(0)
        text = self._output.read().decode("utf-8", errors="replace")
        self._output.close()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error")]
        if errors:
            raise ConformanceError(f"dciodvfy: {self.path.name}: " + "; ".join(errors[:5]))
        if returncode != 0:
            # Exit 1 without an error line, or a signal: dciodvfy could not judge the file (it
            # crashes on some malformed datasets), which passes nothing.
            raise ConformanceError(f"dciodvfy: {self.path.name}: exit status {returncode}")
        return [
            line
            for line in lines
            if "Warning" in line and not any(note in line for note in _DCIODVFY_IGNORED_WARNINGS)
        ]

    def stop(self) -> None:
        """Kill the process if it still runs (the conversion failed or was judged)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._output.close()


def start_dciodvfy(path: Path) -> DciodvfyRun:
    return DciodvfyRun(path)


def run_dciodvfy(path: Path) -> list[str]:
    """Validate one DICOM file; raise :class:`ConformanceError` on errors, return warnings."""
    run = start_dciodvfy(path)
    try:
        return run.result()
    finally:
        run.stop()


def reopen_readers(outputs: Collection[str]) -> tuple[str, ...]:
    """The modules :func:`check_outputs_reopen` uses for ``outputs``: OpenSlide for both (it
    also reads the source's metadata), wsidicom for DICOM, tiffslide for TIFF."""
    wanted = {
        "openslide",
        *(["wsidicom"] if "dicom" in outputs else []),
        *(["tiffslide"] if "tiff" in outputs else []),
    }
    return tuple(name for name in REOPEN_READERS if name in wanted)


def preload_reopen_readers(outputs: Collection[str]) -> None:
    """Import the re-open check's readers for ``outputs`` in a background thread while the
    conversion runs (up to a second of imports, mostly with the GIL free for it while the pool
    decodes); :func:`check_outputs_reopen` imports them again, which then costs nothing, and
    surfaces any import error itself. A reader the outputs do not need is not loaded: on two
    cores its imports would only compete with the conversion."""
    names = reopen_readers(outputs)

    def load() -> None:
        for name in names:
            # check_outputs_reopen imports again and raises what failed here.
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    threading.Thread(target=load, name="convert-preload", daemon=True).start()


def _compare(name: str, expected: npt.NDArray[np.uint8], actual: npt.NDArray[np.uint8]) -> float:
    if actual.shape != expected.shape:
        raise ConformanceError(f"{name}: region of shape {actual.shape}, not {expected.shape}")
    difference = float(np.abs(actual.astype(np.int16) - expected.astype(np.int16)).mean())
    if difference > MAX_MEAN_ABS_DIFFERENCE:
        raise ConformanceError(f"{name}: pixels differ from our decode (mean {difference:.2f})")
    return difference


def _expected_first_tiles(
    path: Path, sizes: Sequence[tuple[int, int]], tile_px: int
) -> list[npt.NDArray[np.uint8]]:
    """Our own decode of the top-left ``tile_px`` square of every level of a written output."""
    written = open_source([path])
    try:
        regions = []
        for level, (width, height) in zip(written.levels, sizes, strict=True):
            region = _region(level, min(tile_px, width), min(tile_px, height))
            regions.append(region)
        return regions
    finally:
        written.close()


def _region(level: SourceLevel, width: int, height: int) -> npt.NDArray[np.uint8]:
    out = np.empty((height, width, 3), np.uint8)
    for row in range(-(-height // level.tile_height)):
        for column in range(-(-width // level.tile_width)):
            index = row * level.columns + column
            tile = level.decode(level.read_raw(index), index)
            y, x = row * level.tile_height, column * level.tile_width
            part = tile[: min(level.tile_height, height - y), : min(level.tile_width, width - x)]
            out[y : y + part.shape[0], x : x + part.shape[1]] = part
    return out


def check_outputs_reopen(
    sizes: Sequence[tuple[int, int]],
    dicom_levels: Sequence[Path],
    tiff_path: Path | None,
    tile_px: int,
) -> dict[str, object]:
    """Re-open the outputs with OpenSlide, tiffslide and wsidicom; raise on any mismatch."""
    report: dict[str, object] = {}
    if tiff_path is not None:
        report.update(_reopen_tiff(tiff_path, sizes, tile_px))
    if dicom_levels:
        report.update(_reopen_dicom(dicom_levels, sizes, tile_px))
    return report


def _reopen_tiff(
    tiff_path: Path, sizes: Sequence[tuple[int, int]], tile_px: int
) -> dict[str, object]:
    """The TIFF output through OpenSlide and tiffslide: level sizes and first tiles."""
    import openslide
    import tiffslide

    report: dict[str, object] = {}
    expected_sizes = [tuple(size) for size in sizes]
    expected = _expected_first_tiles(tiff_path, sizes, tile_px)
    try:
        with openslide.OpenSlide(tiff_path) as slide:
            found = [tuple(d) for d in slide.level_dimensions]
            _check_sizes("OpenSlide (TIFF)", expected_sizes, found)
            report["openslide_tiff"] = _compare_levels(
                "OpenSlide (TIFF)",
                expected,
                lambda i, w, h: _rgb(slide.read_region((0, 0), i, (w, h))),
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with tiffslide.TiffSlide(tiff_path) as tslide:
                found = [tuple(d) for d in tslide.level_dimensions]
                _check_sizes("tiffslide", expected_sizes, found)
                report["tiffslide"] = _compare_levels(
                    "tiffslide",
                    expected,
                    lambda i, w, h: _rgb(np.asarray(tslide.read_region((0, 0), i, (w, h)))),
                )
    except ConformanceError:
        raise
    except Exception as exc:
        raise ConformanceError(f"the TIFF output does not re-open: {type(exc).__name__}") from exc
    return report


def _reopen_dicom(
    dicom_levels: Sequence[Path], sizes: Sequence[tuple[int, int]], tile_px: int
) -> dict[str, object]:
    """The DICOM output through wsidicom and OpenSlide: level sizes and first tiles."""
    import openslide
    import wsidicom  # type: ignore[import-untyped]  # no py.typed marker

    report: dict[str, object] = {}
    expected_sizes = [tuple(size) for size in sizes]
    expected = [
        _expected_first_tiles(path, [size], tile_px)[0]
        for path, size in zip(dicom_levels, sizes, strict=True)
    ]
    try:
        with wsidicom.WsiDicom.open(list(dicom_levels)) as wsi:
            found: list[tuple[int, ...]] = [
                (int(level.size.width), int(level.size.height)) for level in wsi.levels
            ]
            _check_sizes("wsidicom", expected_sizes, found)
            report["wsidicom"] = _compare_levels(
                "wsidicom",
                expected,
                lambda i, w, h: _rgb(
                    np.asarray(wsi.read_region((0, 0), wsi.levels[i].level, (w, h)))
                ),
            )
        with openslide.OpenSlide(dicom_levels[0]) as slide:
            found = [tuple(d) for d in slide.level_dimensions]
            _check_sizes("OpenSlide (DICOM)", expected_sizes, found)
            report["openslide_dicom"] = _compare_levels(
                "OpenSlide (DICOM)",
                expected,
                lambda i, w, h: _rgb(slide.read_region((0, 0), i, (w, h))),
            )
    except ConformanceError:
        raise
    except Exception as exc:
        raise ConformanceError(f"the DICOM output does not re-open: {type(exc).__name__}") from exc
    return report


def _rgb(image: object) -> npt.NDArray[np.uint8]:
    array = np.asarray(image)
    return np.ascontiguousarray(array[..., :3]).astype(np.uint8, copy=False)


def _check_sizes(
    name: str, expected: Sequence[tuple[int, ...]], found: Sequence[tuple[int, ...]]
) -> None:
    if list(found) != list(expected):
        raise ConformanceError(f"{name}: levels {list(found)}, expected {list(expected)}")


def _compare_levels(
    name: str, expected: Sequence[npt.NDArray[np.uint8]], read: object
) -> list[float]:
    differences = []
    for index, region in enumerate(expected):
        height, width = region.shape[:2]
        actual = read(index, width, height)  # type: ignore[operator]
        differences.append(round(_compare(f"{name} level {index}", region, actual), 3))
    return differences

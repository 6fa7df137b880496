"""QC of one large slide: slidestream's QC vs a HistoQC-style reference pass, same file, same run.

* the slide: a generated pyramidal tiled TIFF (``--size full``: 50 000 x 40 000 px at 0.25 µm/px,
  a 40x scan; ``--size small``: 16 384 x 12 288 px, to prove the harness), JPEG tiles of 256 px,
  every level 2x smaller down to ~256 px, built from pre-encoded tiles of each kind (tissue with
  nuclei in H&E optical density, glass, defocused tissue) painted at ~1 µm/px and area-averaged
  to each level's scale, laid out by one tissue map at level-0 tile resolution (about a third of
  the slide; tiles across a boundary are composed from their parts) so that every level shows
  the same tissue (slidestream_samples.qc_bench); cached under ``.local/bench/``. The map is the
  planted truth the measures of both passes are compared with;
* ``reference``: what HistoQC does for its tissue and blur modules, written for this benchmark:
  read the 1.25x level whole, Otsu tissue mask on its grey image (OpenCV's Otsu, the algorithm
  HistoQC takes from scikit-image), and decode every 256-px tile of the 5x level, tile by tile,
  scoring each by its Laplacian variance;
* ``ours``: ``slidestream_wsi.qc.run_qc`` (every measure, the pictures and the HTML).

Both run in child processes, alternating, so each peak RSS is its own; both read through the same
counting reader, so the bytes-read fractions compare. The goal's ratio uses the QC call's time;
the whole child process's time (interpreter, imports) is reported next to it.

Usage: ``make bench-qc`` (``python -m tests.bench.bench_qc [--size full|small] [--repeats N]``).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from tests.support.bench_children import child_environment
from tests.support.memory import own_peak_rss_bytes

SIZES = {"full": (50_000, 40_000), "small": (16_384, 12_288)}
SPEEDUP_GOAL = 3.0
READ_FRACTION_GOAL = 0.10
MIB = 1024**2
REFERENCE_THUMBNAIL_MPP = 8.0
REFERENCE_FOCUS_MPP = 2.0
REFERENCE_BLUR_VARIANCE_MIN = 0.0015
"""Laplacian variance (grey 0-1) below which the reference calls a 5x tile blurred."""


# -- the slide (painted by slidestream_samples.qc_bench) -------------------------------------


def slide_file(size: str) -> Path:
    from slidestream_devstack.paths import StackPaths, find_repo_root
    from slidestream_samples.qc_bench import SLIDE_VERSION, write_slide

    cache = StackPaths(find_repo_root(None)).local / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    width, height = SIZES[size]
    path = cache / f"qc-v{SLIDE_VERSION}-{width}x{height}.tif"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        write_slide(partial, width, height)
        partial.replace(path)
        print(
            f"generated {path} ({path.stat().st_size / MIB:.0f} MiB, {width}x{height} px) "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return path


# -- the children --------------------------------------------------------------------------


def run_reference(path: Path) -> dict[str, object]:
    from slidestream_wsi.qc import open_tiff_pyramid
    from slidestream_wsi.qc.levels import level_mpp

    started = time.perf_counter()
    with open_tiff_pyramid(path) as source:

        def nearest(target: float) -> int:
            return min(
                source.levels, key=lambda level: abs(math.log(level_mpp(level) / target))
            ).index

        thumbnail = source.read_level(nearest(REFERENCE_THUMBNAIL_MPP))
        grey = cv2.cvtColor(thumbnail, cv2.COLOR_RGB2GRAY)
        otsu, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        tissue = grey < otsu
        focus_index = nearest(REFERENCE_FOCUS_MPP)
        focus_level = source.levels[focus_index]
        # HistoQC works on a float grey image (scikit-image's convention, 0-1); every tile of
        # the 5x level is decoded and scored, tile by tile.
        columns = math.ceil(focus_level.width_px / focus_level.tile_width_px)
        rows = math.ceil(focus_level.height_px / focus_level.tile_height_px)
        blurred_tiles = np.zeros((rows, columns), dtype=bool)
        for x, y, tile in source.iter_tiles(focus_index):
            tile_grey = cv2.cvtColor(tile, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
            variance = float(cv2.Laplacian(tile_grey, cv2.CV_32F, ksize=1).var())
            blurred_tiles[y // focus_level.tile_height_px, x // focus_level.tile_width_px] = (
                variance < REFERENCE_BLUR_VARIANCE_MIN
            )
        # The Otsu mask brought to the 5x tile grid: which tiles are mostly tissue, so the
        # blurred share of tissue compares with ours and with the planted truth.
        tissue_tiles = (
            cv2.resize(tissue.astype(np.float32), (columns, rows), interpolation=cv2.INTER_AREA)
            >= 0.5
        )
        result: dict[str, object] = {
            "tissue_fraction": float(tissue.mean()),
            "blurred_tile_fraction": float(blurred_tiles.mean()),
            "blur_fraction": float((blurred_tiles & tissue_tiles).sum())
            / max(1, int(tissue_tiles.sum())),
            "tiles_scored": int(blurred_tiles.size),
            "bytes_read": source.bytes_read,
            "total_bytes": source.total_bytes,
        }
    result["qc_s"] = time.perf_counter() - started
    result["peak_rss_bytes"] = own_peak_rss_bytes()
    return result


def run_ours(path: Path) -> dict[str, object]:
    from slidestream_wsi.qc import open_tiff_pyramid, run_qc

    started = time.perf_counter()
    with open_tiff_pyramid(path) as source:
        report, pictures = run_qc(source, slide_label=path.name)
    qc_s = time.perf_counter() - started
    measured = {m.name: m.value for m in report.measures}
    return {
        "qc_s": qc_s,
        "verdict": report.verdict,
        "tissue_fraction": measured["tissue_fraction"],
        "blur_fraction": measured.get("blur_fraction", float("nan")),
        "tiles_scored": sum(use.tiles_read for use in report.level_use if use.purpose == "focus"),
        "bytes_read": report.bytes_read,
        "total_bytes": report.total_bytes,
        "levels_read": list(report.levels_read),
        "measures": len(report.measures),
        "picture_bytes": sum(len(content) for content in pictures.files().values()),
        "peak_rss_bytes": own_peak_rss_bytes(),
    }


def thread_scaling() -> float:
    """How much two threads of OpenCV work get done, per unit of time, against one thread on
    this machine (2.0 on two free cores; less when the cores are SMT siblings or shared)."""
    import threading

    image = np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), dtype=np.uint8)
    threads_before = cv2.getNumThreads()
    cv2.setNumThreads(1)

    def work() -> None:
        for _ in range(20):
            cv2.GaussianBlur(image, (0, 0), 3)

    try:
        started = time.perf_counter()
        work()
        one = time.perf_counter() - started
        workers = [threading.Thread(target=work) for _ in range(2)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        two = time.perf_counter() - started
    finally:
        cv2.setNumThreads(threads_before)
    return 2 * one / two


def child(kind: str, path: Path) -> dict[str, object]:
    """One worker in a fresh interpreter; ``process_s`` is its whole life (start-up, imports,
    QC, exit) as the parent sees it, ``qc_s`` the QC call alone as the worker times it."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_qc", "--worker", kind, "--path", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=child_environment(path.parent / "pycache"),
    )
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr[-4000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = process_s
    return result


def _seconds(run: dict[str, object], key: str) -> float:
    return float(str(run[key]))


# -- the parent ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each pass, alternating; the best counts"
    )
    parser.add_argument("--worker", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker = run_ours if args.worker == "ours" else run_reference
        # The first call is what one slide costs a fresh process (lazy initialisation in
        # OpenCV and NumPy included); the second what each further slide costs a running
        # service. Peak RSS is the process's, over both.
        cold = worker(args.path)
        warm = worker(args.path)
        cold["qc_warm_s"] = warm["qc_s"]
        cold["peak_rss_bytes"] = warm["peak_rss_bytes"]
        print(json.dumps(cold))
        return

    # Imported here, not at the top: the workers' whole-process time must not include the
    # slide painter's imports.
    from slidestream_samples.qc_bench import (
        DEFOCUSED_TISSUE_SHARE,
        LEVEL0_MPP,
        TILE_PX,
        planted_truth,
        tissue_map,
    )

    slide = slide_file(args.size)
    scaling = thread_scaling()
    width, height = SIZES[args.size]
    truth = planted_truth(tissue_map(math.ceil(width / TILE_PX), math.ceil(height / TILE_PX)))
    # Alternating, so that both passes see the same page cache and the same neighbours' load;
    # each pass's best run counts (the least disturbed by other processes on the machine).
    runs: dict[str, list[dict[str, object]]] = {"reference": [], "ours": []}
    # One untimed run each first, so both import from compiled bytecode (as in the image).
    for kind in ("reference", "ours"):
        child(kind, slide)
    for _ in range(max(1, args.repeats)):
        for kind in ("reference", "ours"):
            runs[kind].append(child(kind, slide))
    reference = min(runs["reference"], key=lambda run: _seconds(run, "qc_s"))
    ours = min(runs["ours"], key=lambda run: _seconds(run, "qc_s"))
    ours_s, reference_s = _seconds(ours, "qc_s"), _seconds(reference, "qc_s")
    ours_warm_s = min(_seconds(run, "qc_warm_s") for run in runs["ours"])
    reference_warm_s = min(_seconds(run, "qc_warm_s") for run in runs["reference"])
    warm_speedup = reference_warm_s / ours_warm_s
    ours_process_s = min(_seconds(run, "process_s") for run in runs["ours"])
    reference_process_s = min(_seconds(run, "process_s") for run in runs["reference"])
    speedup = reference_s / ours_s
    process_speedup = reference_process_s / ours_process_s
    size = slide.stat().st_size
    ours_fraction = int(str(ours["bytes_read"])) / size
    reference_fraction = int(str(reference["bytes_read"])) / size
    meets_speed = "meets" if speedup >= SPEEDUP_GOAL else "misses"
    meets_bytes = "meets" if ours_fraction <= READ_FRACTION_GOAL else "misses"
    reference_rss = int(str(reference["peak_rss_bytes"])) / MIB
    ours_rss = int(str(ours["peak_rss_bytes"])) / MIB
    rows = [
        (
            "seconds per slide, QC call (first in the process)",
            f"{reference_s:.3f} s",
            f"{ours_s:.3f} s",
        ),
        (
            "seconds per slide, QC call (second, warm)",
            f"{reference_warm_s:.3f} s",
            f"{ours_warm_s:.3f} s",
        ),
        (
            "seconds per slide, whole process",
            f"{reference_process_s:.2f} s",
            f"{ours_process_s:.2f} s",
        ),
        ("peak RSS", f"{reference_rss:.0f} MiB", f"{ours_rss:.0f} MiB"),
        ("bytes read", f"{reference_fraction:.2%}", f"{ours_fraction:.2%}"),
        ("5x tiles scored", str(reference["tiles_scored"]), str(ours["tiles_scored"])),
        (
            "tissue fraction (planted {:.1%})".format(truth["tissue_fraction"]),
            f"{float(str(reference['tissue_fraction'])):.1%}",
            f"{float(str(ours['tissue_fraction'])):.1%}",
        ),
        (
            "blurred share of tissue (planted {:.1%})".format(truth["blur_fraction"]),
            f"{float(str(reference['blur_fraction'])):.1%}",
            f"{float(str(ours['blur_fraction'])):.1%}",
        ),
        (
            "what it does",
            "Otsu tissue at 1.25x, Laplacian variance on every 5x tile",
            f"{ours['measures']} measures, tissue-only 5x tiles, pictures + HTML; focus and "
            "PNG encodes on two helper threads",
        ),
    ]
    table = "\n".join(f"| {name} | {theirs} | {mine} |" for name, theirs, mine in rows)
    reference_all_blurred = float(str(reference["blurred_tile_fraction"]))
    body = f"""
Slide: generated pyramidal tiled TIFF, {width:,} x {height:,} px at {LEVEL0_MPP} µm/px (40x),
{size / MIB:,.0f} MiB ({size:,} bytes), 256-px JPEG tiles, a level per 2x, coarse levels painted
finer and area-averaged; about a third tissue, the left {DEFOCUSED_TISSUE_SHARE:.0%} of it
defocused. Both passes read through the same byte-counting reader, in child processes that import
from compiled bytecode (as in the service image; one untimed run each first), on a warm page
cache, {max(1, args.repeats)} runs each, alternating; each pass's best run counts.
"QC call" is the call alone (open, read, measure, and for ours the pictures), timed in the child,
first the child's first call (lazy initialisation inside OpenCV and NumPy included) then a second
one on the same file (what each further slide costs a running service); "whole process" is the
child's life as the parent sees it (interpreter start, imports, both calls, exit).

| measure | HistoQC-style reference | slidestream QC |
|---|---|---|
{table}

**Speed-up {speedup:.2f}x** on the first QC call (goal ≥ {SPEEDUP_GOAL:g}x: {meets_speed} it;
{warm_speedup:.2f}x on the warm call, {process_speedup:.2f}x on the whole process);
**bytes read {ours_fraction:.2%}** of the file (goal ≤ {READ_FRACTION_GOAL:.0%}: {meets_bytes} it).
Ours uses two helper threads; two threads of OpenCV work ran {scaling:.2f}x as fast as one on
this machine just before the runs. Ours read levels {ours["levels_read"]}, verdict
{ours["verdict"]}; the reference's blurred
share of tissue counts the 5x tiles its Otsu mask covers by half or more (it also called
{reference_all_blurred:.1%} of all 5x tiles blurred, glass included).
"""
    command = (
        "make bench-qc"
        if args.size == "full"
        else f"python -m tests.bench.bench_qc --size {args.size}"
    )
    from tests.support.bench_report import write_section

    write_section("qc" if args.size == "full" else f"qc-{args.size}", command, body)
    print(body)


if __name__ == "__main__":
    main()

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

Usage: ``make bench-qc`` (``python -m tests.bench.bench_qc [--repeats N]``): three slide sizes.
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

SIZES = {"small": (16_384, 12_288), "medium": (32_768, 24_576), "full": (50_000, 40_000)}
WARM_CALL_GOAL_S = 0.5
"""The warm QC call on the full slide (QC is a streaming gate; real HistoQC takes 10.7 s)."""
READ_FRACTION_GOAL = 0.10
ACCURACY_GOAL = 0.05
"""Blurred share of tissue within ± 5 points of the planted share."""
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
        "blur_ci95": [report.focus.ci95_low, report.focus.ci95_high] if report.focus else None,
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


def accuracy_row(size: str, repeats: int) -> tuple[dict[str, object], dict[str, object], float]:
    """The best reference and our best run on one size's slide, and its planted blurred share."""
    from slidestream_samples.qc_bench import TILE_PX, planted_truth, tissue_map

    slide = slide_file(size)
    width, height = SIZES[size]
    truth = planted_truth(tissue_map(math.ceil(width / TILE_PX), math.ceil(height / TILE_PX)))
    runs: dict[str, list[dict[str, object]]] = {"reference": [], "ours": []}
    # One untimed run each first, so both import from compiled bytecode (as in the image); then
    # alternating, so both see the same page cache and load; each pass's best run counts.
    for kind in ("reference", "ours"):
        child(kind, slide)
    for _ in range(max(1, repeats)):
        for kind in ("reference", "ours"):
            runs[kind].append(child(kind, slide))
    reference = min(runs["reference"], key=lambda run: _seconds(run, "qc_s"))
    ours = min(runs["ours"], key=lambda run: _seconds(run, "qc_s"))
    for name, kind in (("qc_warm_s", "ours"), ("process_s", "ours")):
        ours[f"best_{name}"] = min(_seconds(run, name) for run in runs[kind])
    for name in ("qc_warm_s", "process_s"):
        reference[f"best_{name}"] = min(_seconds(run, name) for run in runs["reference"])
    ours["truth"] = truth
    return reference, ours, truth["blur_fraction"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each pass on the full slide"
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
    scaling = thread_scaling()
    results = {size: accuracy_row(size, args.repeats if size == "full" else 1) for size in SIZES}
    from tests.support.bench_report import write_section

    body = _report(results, scaling, max(1, args.repeats))
    write_section("qc", "make bench-qc", body)
    print(body)


def _accuracy_table(
    results: dict[str, tuple[dict[str, object], dict[str, object], float]],
) -> tuple[str, bool]:
    lines, all_met = [], True
    for size, (reference, ours, truth) in results.items():
        found = float(str(ours["blur_fraction"]))
        low, high = (float(v) for v in ours["blur_ci95"])  # type: ignore[attr-defined]
        met = abs(found - truth) <= ACCURACY_GOAL
        all_met &= met
        width, height = SIZES[size]
        lines.append(
            f"| {size} ({width:,} x {height:,}) | {truth:.1%} "
            f"| {float(str(reference['blur_fraction'])):.1%} | {found:.1%} "
            f"({low:.1%}-{high:.1%}) | {found - truth:+.1%} ({'meets' if met else 'misses'}) "
            f"| {ours['tiles_scored']} | {_seconds(ours, 'best_qc_warm_s'):.3f} s |"
        )
    return "\n".join(lines), all_met


def _mib(run: dict[str, object]) -> str:
    return f"{int(str(run['peak_rss_bytes'])) / MIB:.0f}"


def _share(run: dict[str, object], key: str) -> str:
    return f"{float(str(run[key])):.1%}"


def _report(
    results: dict[str, tuple[dict[str, object], dict[str, object], float]],
    scaling: float,
    repeats: int,
) -> str:
    from slidestream_samples.qc_bench import DEFOCUS_SIGMA_UM, LEVEL0_MPP

    accuracy, accurate = _accuracy_table(results)
    reference, ours, _ = results["full"]
    size = slide_file("full").stat().st_size
    ours_fraction = int(str(ours["bytes_read"])) / size
    reference_fraction = int(str(reference["bytes_read"])) / size
    ours_warm_s = _seconds(ours, "best_qc_warm_s")
    reference_warm_s = _seconds(reference, "best_qc_warm_s")
    rows = [
        ("QC call, first in the process", reference["qc_s"], ours["qc_s"]),
        ("QC call, second (warm)", reference_warm_s, ours_warm_s),
        ("whole process", reference["best_process_s"], ours["best_process_s"]),
    ]
    timing = "\n".join(
        f"| seconds per slide, {name} | {float(str(theirs)):.3f} s | {float(str(mine)):.3f} s |"
        for name, theirs, mine in rows
    )
    width, height = SIZES["full"]
    warm_verdict = "meets" if ours_warm_s <= WARM_CALL_GOAL_S else "misses"
    bytes_verdict = "meets" if ours_fraction <= READ_FRACTION_GOAL else "misses"
    return f"""
Slides: generated pyramidal tiled TIFFs at {LEVEL0_MPP} µm/px (40x), 256-px JPEG tiles, a level
per 2x, coarse levels painted finer and area-averaged (`slidestream_samples.qc_bench`); about a
third tissue, the left fifth of it defocused (Gaussian, sigma {DEFOCUS_SIGMA_UM:g} µm, sensor
noise after the blur). The graded matrix (1, 2, 4, 8 µm x 10 % and 40 % x the three sizes, and a
10 µm streak) is `tests/unit/wsi/qc/test_focus_accuracy.py`. Both passes run in child processes
that import from compiled bytecode, through the same byte-counting reader, alternating; the
full slide {repeats} runs each (best counts), the others once. The reference is the
HistoQC-style pass kept for the record (Otsu tissue at 1.25x, Laplacian variance on every 5x
tile); the real HistoQC v2.1 took 10.7 s per slide on the full slide (issue 17).

**Blurred share of tissue, planted vs found** (ours with its 95 % interval; goal ± 5 points):

| slide | planted | reference | slidestream (95 % interval) | error | 10x tiles scored | warm call |
|---|---|---|---|---|---|---|
{accuracy}

**Full slide** ({width:,} x {height:,} px, {size / (1024**2):,.0f} MiB):

| measure | reference | slidestream QC |
|---|---|---|
{timing}
| peak RSS | {_mib(reference)} MiB | {_mib(ours)} MiB |
| bytes read | {reference_fraction:.2%} | {ours_fraction:.2%} |
| tissue fraction | {_share(reference, "tissue_fraction")} | {_share(ours, "tissue_fraction")} |

Accuracy: {"every size meets" if accurate else "a size misses"} the ± 5 points. Warm call
**{ours_warm_s:.3f} s** (goal ≤ {WARM_CALL_GOAL_S:g} s: {warm_verdict} it; the reference
{reference_warm_s:.3f} s); **bytes read {ours_fraction:.2%}** of the file (goal ≤
{READ_FRACTION_GOAL:.0%}: {bytes_verdict} it). Ours read levels {ours["levels_read"]} (focus at
1 µm/px, the analysis level whole), verdict {ours["verdict"]}; it uses two helper threads, and
two threads of OpenCV work ran {scaling:.2f}x as fast as one on this machine before the runs.
"""


if __name__ == "__main__":
    main()

"""QC of one large slide: slidestream's QC vs a HistoQC-style reference pass, same file, same run.

* the slide: a generated pyramidal tiled TIFF (``--size full``: 50 000 x 40 000 px at 0.25 µm/px,
  a 40x scan; ``--size small``: 16 384 x 12 288 px, to prove the harness), JPEG tiles of 256 px,
  every level 2x smaller down to ~256 px, built from pre-encoded tiles painted per level at that
  level's scale (tissue with nuclei in H&E optical density, glass, a defocused region), laid out
  by a low-resolution tissue map (about a third of the slide), cached under ``.local/bench/``;
* ``reference``: what HistoQC does for its tissue and blur modules, written for this benchmark:
  read the 1.25x level whole and the 5x level whole, Otsu tissue mask on the 1.25x grey image
  (OpenCV's Otsu, the algorithm HistoQC takes from scikit-image), Laplacian variance over every
  256-px tile of the 5x level;
* ``ours``: ``slidestream_wsi.qc.run_qc`` (every measure, the pictures and the HTML).

Both run in child processes, one after the other, so each peak RSS is its own; both read through
the same counting reader, so the bytes-read fractions compare.

Usage: ``make bench-qc`` (``python -m tests.bench.bench_qc [--size full|small]``).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_wsi.qc import synthetic

SIZES = {"full": (50_000, 40_000), "small": (16_384, 12_288)}
LEVEL0_MPP = 0.25
TILE_PX = 256
SEED_TILES_PER_KIND = 6
JPEG_QUALITY = 85
SPEEDUP_GOAL = 3.0
READ_FRACTION_GOAL = 0.10
MIB = 1024**2
REFERENCE_THUMBNAIL_MPP = 8.0
REFERENCE_FOCUS_MPP = 2.0
REFERENCE_BLUR_VARIANCE_MIN = 0.0015
"""Laplacian variance (grey 0-1) below which the reference calls a 5x tile blurred."""


# -- the slide ---------------------------------------------------------------------------------


def _seed_tiles(mpp_um: float, seed: int) -> dict[str, list[bytes]]:
    """Pre-encoded tiles of each kind, painted at this level's scale."""
    kinds: dict[str, list[bytes]] = {"glass": [], "tissue": [], "blurred": []}
    for index in range(SEED_TILES_PER_KIND):
        painted = synthetic.paint_tissue(
            TILE_PX * 2, TILE_PX * 2, seed=seed * 100 + index, tissue_share=0.999, mpp_um=mpp_um
        )
        tissue = painted.rgb[:TILE_PX, :TILE_PX]
        glass = synthetic.paint_tissue(TILE_PX, TILE_PX, seed=index, mpp_um=mpp_um, empty=True).rgb
        blurred = cv2.GaussianBlur(tissue, (0, 0), max(0.5, 4.0 / mpp_um))
        for kind, image in (("tissue", tissue), ("glass", glass), ("blurred", blurred)):
            kinds[kind].append(bytes(imagecodecs.jpeg8_encode(image, level=JPEG_QUALITY)))
    return kinds


def _tissue_map(columns: int, rows: int) -> npt.NDArray[np.uint8]:
    """0 glass, 1 tissue, 2 defocused tissue, on a 1/4-tile grid of level 0."""
    painted = synthetic.paint_tissue(columns * 4, rows * 4, seed=11, tissue_share=0.33)
    kinds = painted.tissue.astype(np.uint8)
    defocused = np.zeros_like(kinds)
    defocused[:, : kinds.shape[1] // 5] = 1  # the left fifth of the slide is out of focus
    return np.where((kinds == 1) & (defocused == 1), 2, kinds).astype(np.uint8)


def write_slide(path: Path, width: int, height: int) -> None:
    columns0, rows0 = math.ceil(width / TILE_PX), math.ceil(height / TILE_PX)
    kind_map = _tissue_map(columns0, rows0)
    names = ("glass", "tissue", "blurred")
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        level, level_w, level_h = 0, width, height
        while True:
            mpp = LEVEL0_MPP * width / level_w
            seeds = _seed_tiles(mpp, level)
            columns, rows = math.ceil(level_w / TILE_PX), math.ceil(level_h / TILE_PX)

            def tiles(
                columns: int = columns, rows: int = rows, seeds: dict[str, list[bytes]] = seeds
            ) -> Iterator[bytes]:
                for row in range(rows):
                    for column in range(columns):
                        y = min(kind_map.shape[0] - 1, int((row + 0.5) / rows * kind_map.shape[0]))
                        x = min(
                            kind_map.shape[1] - 1, int((column + 0.5) / columns * kind_map.shape[1])
                        )
                        variants = seeds[names[kind_map[y, x]]]
                        yield variants[(row * 7 + column * 13) % len(variants)]

            tif.write(
                tiles(),
                shape=(level_h, level_w, 3),
                dtype=np.uint8,
                tile=(TILE_PX, TILE_PX),
                compression="jpeg",
                photometric="rgb",
                resolution=(1e4 / mpp, 1e4 / mpp),
                resolutionunit="CENTIMETER",
                subfiletype=1 if level else 0,
            )
            if max(level_w, level_h) <= 2 * TILE_PX:
                break
            level, level_w, level_h = level + 1, level_w // 2, level_h // 2


def slide_file(size: str) -> Path:
    from slidestream_devstack.paths import StackPaths, find_repo_root

    cache = StackPaths(find_repo_root(None)).local / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    width, height = SIZES[size]
    path = cache / f"qc-{width}x{height}.tif"
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


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux (getrusage(2)).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
        focus = source.read_level(nearest(REFERENCE_FOCUS_MPP))
        focus_grey = cv2.cvtColor(focus, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
        laplacian = cv2.Laplacian(focus_grey, cv2.CV_32F, ksize=1)
        blurred = total = 0
        for y in range(0, focus_grey.shape[0], TILE_PX):
            for x in range(0, focus_grey.shape[1], TILE_PX):
                total += 1
                blurred += float(laplacian[y : y + TILE_PX, x : x + TILE_PX].var()) < (
                    REFERENCE_BLUR_VARIANCE_MIN
                )
        result: dict[str, object] = {
            "tissue_fraction": float(tissue.mean()),
            "blurred_tile_fraction": blurred / total,
            "bytes_read": source.bytes_read,
            "total_bytes": source.total_bytes,
        }
    result["wall_s"] = time.perf_counter() - started
    result["peak_rss_bytes"] = _peak_rss_bytes()
    return result


def run_ours(path: Path) -> dict[str, object]:
    from slidestream_wsi.qc import open_tiff_pyramid, run_qc

    started = time.perf_counter()
    with open_tiff_pyramid(path) as source:
        report, pictures = run_qc(source, slide_label=path.name)
    wall_s = time.perf_counter() - started
    return {
        "wall_s": wall_s,
        "verdict": report.verdict,
        "tissue_fraction": report.measure("tissue_fraction").value,
        "blur_fraction": report.measure("blur_fraction").value,
        "bytes_read": report.bytes_read,
        "total_bytes": report.total_bytes,
        "levels_read": list(report.levels_read),
        "measures": len(report.measures),
        "picture_bytes": sum(len(content) for content in pictures.files().values()),
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def child(kind: str, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_qc", "--worker", kind, "--path", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr[-4000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the parent ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--worker", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker = run_ours if args.worker == "ours" else run_reference
        print(json.dumps(worker(args.path)))
        return

    slide = slide_file(args.size)
    # Reference first, then ours, then the reference again: the page cache is warm for both.
    reference_runs = [child("reference", slide)]
    ours = child("ours", slide)
    reference_runs.append(child("reference", slide))
    reference = min(reference_runs, key=lambda run: float(str(run["wall_s"])))
    ours_s, reference_s = float(str(ours["wall_s"])), float(str(reference["wall_s"]))
    speedup = reference_s / ours_s
    size = slide.stat().st_size
    ours_fraction = int(str(ours["bytes_read"])) / size
    reference_fraction = int(str(reference["bytes_read"])) / size
    width, height = SIZES[args.size]
    meets_speed = "meets" if speedup >= SPEEDUP_GOAL else "misses"
    meets_bytes = "meets" if ours_fraction <= READ_FRACTION_GOAL else "misses"
    reference_rss = int(str(reference["peak_rss_bytes"])) / MIB
    ours_rss = int(str(ours["peak_rss_bytes"])) / MIB
    rows = [
        ("seconds per slide", f"{reference_s:.2f} s", f"{ours_s:.2f} s"),
        ("peak RSS", f"{reference_rss:.0f} MiB", f"{ours_rss:.0f} MiB"),
        ("bytes read", f"{reference_fraction:.2%}", f"{ours_fraction:.2%}"),
        (
            "what it does",
            "Otsu tissue at 1.25x, Laplacian variance on every 5x tile",
            f"{ours['measures']} measures, tissue-only 5x tiles, pictures + HTML",
        ),
    ]
    table = "\n".join(f"| {name} | {theirs} | {mine} |" for name, theirs, mine in rows)
    body = f"""
Slide: generated pyramidal tiled TIFF, {width:,} x {height:,} px at {LEVEL0_MPP} µm/px (40x),
{size / MIB:,.0f} MiB ({size:,} bytes), 256-px JPEG tiles, a level per 2x; about a third tissue,
the left fifth of it defocused. Both passes read through the same byte-counting reader, in
child processes, on a warm page cache; the reference's time is the better of two runs.

| measure | HistoQC-style reference | slidestream QC |
|---|---|---|
{table}

**Speed-up {speedup:.2f}x** (goal ≥ {SPEEDUP_GOAL:g}x: {meets_speed} it); **bytes read
{ours_fraction:.2%}** of the file (goal ≤ {READ_FRACTION_GOAL:.0%}: {meets_bytes} it).
Ours read levels {ours["levels_read"]}; verdict {ours["verdict"]}, tissue
{float(str(ours["tissue_fraction"])):.1%}, blurred {float(str(ours["blur_fraction"])):.1%} of
tissue (reference: Otsu tissue {float(str(reference["tissue_fraction"])):.1%}, blurred tiles
{float(str(reference["blurred_tile_fraction"])):.1%} of all tiles).
"""
    command = (
        "make bench-qc"
        if args.size == "full"
        else f"python -m tests.bench.bench_qc --size {args.size}"
    )
    from tests.bench.report import write_section

    write_section("qc" if args.size == "full" else f"qc-{args.size}", command, body)
    print(body)


if __name__ == "__main__":
    main()

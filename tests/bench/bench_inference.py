"""Inference of one large slide: the service vs a saturated direct Triton client and vs the naive
path, the same model on the same tiles, in the same run.

* the slide: a generated pyramidal tiled TIFF, mostly tissue (``--size full``: 40 960 x 30 720
  px at 0.25 µm/px, a 40x scan with over 1 GPx of tissue; ``--size small``: 16 384 x 12 288,
  to prove the harness), painted by :func:`slidestream_samples.qc_bench.write_slide`, converted
  to DICOM levels by slidestream_wsi's converter and judged by QC (``run_qc``: its verdict and
  usable-tissue mask), all in this process and cached under ``.local/bench/``;
* the model: the reference tissue-type model (``.local/models/tissue-type``, built by ``make
  models``), else a small CNN with random weights exported by ``tests/bench/inference_cnn.py``
  in Triton's environment; pushed through the models API under a benchmark name, loaded (the
  canary included), unloaded and deleted from the ``models`` bucket afterwards;
* ``service``: the level files and mask in the stack's MinIO, one ``slides.qc.v1`` handled by
  ``InferenceWorkflow.on_qc`` (routes in memory, decisions in SQLite, events recorded instead
  of sent to Kafka) with the real ``SlideRun``, tile reader and ``GrpcTriton`` against the
  stack's Triton, in a child process (its peak RSS its own): twice, two slide ids on the same
  objects, the first paying the process's lazy start-up; throughput = tiles from the first
  tile read (the level opened, after the download) to the events published;
* ``direct``: ``tritonclient.grpc.aio`` on the same tiles, decoded and normalised beforehand,
  every in-flight count of 1, 2, 4, 8, 16 with every preferred batch size of the card; the best
  counts;
* ``naive``: one tile read, normalised and sent per request, one request at a time, on evenly
  spaced tiles of the plan (a subset, :data:`NAIVE_TILES`).

Triton's own statistics (requests, executions, queue and compute time per request) are read
around each run. The stack must be running (``make up``); nothing of it is started or stopped.

Usage: ``make bench-inference`` (``python -m tests.bench.bench_inference [--size full|small]
[--model-dir DIR]``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import numpy as np
import numpy.typing as npt

from slidestream_contracts.events import SlideQcV1
from slidestream_contracts.model_card import ModelCardV1
from tests.support.bench_children import child_environment
from tests.support.inference_bench import (
    BENCH_MODEL,
    CACHE,
    SIZES,
    TENANT,
    TISSUE_SHARE,
    delete_prefix,
    model_dir,
    open_level,
    prepared_slide,
    push_and_load,
    stack_env,
    unload,
    upload_slide,
    wait_for_triton,
)
from tests.support.triton_bench import (
    ClientRun,
    ModelTarget,
    TritonStats,
    naive_run,
    one_by_one,
    predecoded,
    saturated_run,
    sweep,
    triton_stats,
)

GIB = 1024**3
MIB = 1024**2
DIRECT_IN_FLIGHT = (1, 2, 4, 8, 16)
DIRECT_TILES_MAX = 4096
"""Tiles decoded beforehand for the direct client (evenly spaced when the plan has more)."""
SWEEP_TILES = 2048
"""Tiles of each sweep run (the rounds at the sweep's best send all of the decoded ones)."""
NAIVE_TILES = 256
ROUNDS = 3
"""Service runs, each followed by a direct run at the sweep's best; the best of each counts."""
ATTEMPTS = 3
"""Whole measurements tried when Triton went away (other work on a shared stack restarts it)."""
EXIT_RETRYABLE = 75
"""The service child's exit status for a failure the service retries (EX_TEMPFAIL)."""
SERVICE_GOAL = 0.8
NAIVE_GOAL = 5.0
RSS_GOAL_BYTES = GIB
T = TypeVar("T")


# -- the service in a child process ------------------------------------------------------------


class TritonGoneError(RuntimeError):
    """Triton restarted or lost the model mid-measurement: the measurement is redone."""


class ServiceChild:
    """The service in its own process (``tests.bench.inference_service``): one QC event at a
    time, so that the direct client can run between two of its runs."""

    def __init__(self, arguments: dict[str, object]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.inference_service", json.dumps(arguments)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_environment(CACHE / "pycache"),
        )

    def _line(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            if self._process.wait() == EXIT_RETRYABLE:
                raise TritonGoneError("the service's run failed as retryable")
            raise SystemExit("the service child failed (its output is above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, event: SlideQcV1) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(event.model_dump_json() + "\n")
        self._process.stdin.flush()
        return self._line()

    def peak_rss_bytes(self) -> int:
        """Ends the child; its peak RSS over every run."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        peak = int(self._line()["peak_rss_bytes"])
        self._process.wait()
        return peak

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def batch_sizes(card: ModelCardV1) -> list[int]:
    return sorted({size for size in card.preferred_batch_sizes if size <= card.max_batch_size})


def client_run(work: Coroutine[Any, Any, T]) -> T:
    """``work`` run to its end; Triton going away (restarted, the model unloaded) raised as
    :class:`TritonGoneError`, so the measurement is redone."""
    from tritonclient.utils import InferenceServerException

    try:
        return asyncio.run(work)
    except* InferenceServerException as group:
        raise TritonGoneError(str(group.exceptions[0])) from None


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Runs:
    service: list[dict[str, Any]]
    """Per round: tiles, seconds, tiles/s, bytes read, CPU time and Triton's statistics."""
    direct: list[ClientRun]
    """Per round, at the sweep's best in-flight count and batch size."""
    tuned: list[dict[str, Any]]
    """Per round, the service set to the sweep's best in-flight count and batch size."""
    tuned_settings: dict[str, int]
    peak_rss_bytes: int
    """Of the service process with the default settings, over its rounds."""
    swept: list[ClientRun]
    naive: ClientRun
    planned: int


@dataclass(frozen=True, slots=True)
class Measured:
    size: str
    folder: Path
    event: SlideQcV1
    card: ModelCardV1
    model_label: str
    settings: dict[str, int]
    runs: Runs
    load_at_start: float


def direct_grid(runs: list[ClientRun]) -> str:
    sizes = sorted({run.batch_size for run in runs})
    rows = ["| in flight | " + " | ".join(f"batch {size}" for size in sizes) + " |"]
    rows.append("|---" * (len(sizes) + 1) + "|")
    for in_flight in sorted({run.in_flight for run in runs}):
        cells = {run.batch_size: run for run in runs if run.in_flight == in_flight}
        rows.append(
            f"| {in_flight} | "
            + " | ".join(f"{cells[size].tiles_per_s:.0f}" for size in sizes)
            + " |"
        )
    return "\n".join(rows)


def service_rows(runs: list[dict[str, Any]], label: str) -> list[tuple[str, str]]:
    return [
        (
            f"{label}, round {index}{' (fresh process)' if index == 1 else ''}",
            f"{run['tiles']} tiles in {run['read_to_published_s']:.2f} s = "
            f"{run['tiles_per_s']:.0f} tiles/s (message {run['message_s']:.2f} s, service CPU "
            f"{1000 * run['cpu_s'] / run['tiles']:.2f} ms per tile)",
        )
        for index, run in enumerate(runs, start=1)
    ]


def result_rows(m: Measured) -> list[tuple[str, str]]:
    runs = m.runs
    tuned = runs.tuned_settings
    rows = service_rows(runs.service, "service, default settings")
    rows += [
        (
            f"direct client, round {index} (in flight {run.in_flight}, batch {run.batch_size})",
            f"{run.tiles} tiles in {run.seconds:.2f} s = {run.tiles_per_s:.0f} tiles/s",
        )
        for index, run in enumerate(runs.direct, start=1)
    ]
    rows += service_rows(
        runs.tuned,
        f"service set to the same (in flight {tuned['max_requests_in_flight']}, "
        f"batch {tuned['request_batch_tiles']})",
    )
    naive = runs.naive
    rows.append(
        (
            f"naive path (one tile read, normalised and sent per request, sequential; "
            f"{naive.tiles} evenly spaced tiles)",
            f"{naive.tiles_per_s:.1f} tiles/s",
        )
    )
    return rows


def ratio_rows(
    label: str, service: list[dict[str, Any]], direct: list[ClientRun], goal: bool
) -> list[tuple[str, str]]:
    service_tps = max(float(run["tiles_per_s"]) for run in service)
    direct_tps = max(run.tiles_per_s for run in direct)
    ratio = service_tps / direct_tps
    verdict = f": {'meets' if ratio >= SERVICE_GOAL else 'misses'} the goal" if goal else ""
    per_round = sorted(
        float(one["tiles_per_s"]) / other.tiles_per_s
        for one, other in zip(service, direct, strict=True)
    )
    return [
        (
            f"**{label} ÷ direct**, best round each"
            + (f" (goal ≥ {SERVICE_GOAL})" if goal else ""),
            f"**{ratio:.2f}x** ({service_tps:.0f} / {direct_tps:.0f} tiles/s{verdict})",
        ),
        (
            f"{label} ÷ direct, round by round",
            ", ".join(f"{value:.2f}x" for value in per_round)
            + f" (median {per_round[len(per_round) // 2]:.2f}x)",
        ),
    ]


def goal_rows(runs: Runs, level_bytes: int, all_bytes: int) -> list[tuple[str, str]]:
    service_tps = max(float(run["tiles_per_s"]) for run in runs.service)
    read = max(int(run["bytes_read"]) for run in runs.service)
    rows = ratio_rows("service", runs.service, runs.direct, goal=True)
    rows += ratio_rows("service set to the same", runs.tuned, runs.direct, goal=False)
    return [
        *rows,
        (
            f"**service ÷ naive** (expected ≥ {NAIVE_GOAL:g}x)",
            f"**{service_tps / runs.naive.tiles_per_s:.1f}x**",
        ),
        (
            "peak RSS of the service process (goal < 1 GiB)",
            f"{runs.peak_rss_bytes / MIB:.0f} MiB",
        ),
        (
            "bytes read by the tile reader",
            f"{read / MIB:.2f} MiB = {read / level_bytes:.1%} of the level file, "
            f"{read / all_bytes:.2%} of all level files",
        ),
    ]


def settings_text(m: Measured) -> str:
    names = [f"{name.upper()}={value}" for name, value in sorted(m.settings.items())]
    if "request_batch_tiles" not in m.settings:
        names.append("REQUEST_BATCH_TILES unset")
    return ", ".join(names)


def report(m: Measured) -> str:
    from slidestream_inference.domain.tensors import request_batch_size
    from slidestream_wsi.pyramid import described_geometry

    sent_tiles = request_batch_size(m.card, m.settings.get("request_batch_tiles"))
    sent_in_flight = m.settings["max_requests_in_flight"]
    from slidestream_wsi.convert.model import level_file_name
    from slidestream_wsi.pyramid import choose_level

    width, height = SIZES[m.size]
    qc = json.loads((m.folder / "qc.json").read_text(encoding="utf-8"))
    level = choose_level(described_geometry(m.event.levels), m.card.input.mpp_um)
    files = sorted((m.folder / "dicom").glob("level-*.dcm"))
    level_bytes = (m.folder / "dicom" / level_file_name(level.index)).stat().st_size
    all_bytes = sum(path.stat().st_size for path in files)
    runs = m.runs
    best = max(runs.swept, key=lambda run: run.tiles_per_s)
    subset = ", evenly spaced over the plan," if best.tiles < runs.planned else ""
    service_stats = TritonStats.total([run["stats"] for run in runs.service])
    tuned_stats = TritonStats.total([run["stats"] for run in runs.tuned])
    direct_stats = TritonStats.total([run.stats for run in runs.direct])
    rows = result_rows(m) + goal_rows(runs, level_bytes, all_bytes)
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    card = m.card
    return f"""
Slide: generated pyramidal TIFF, {width:,} x {height:,} px at 0.25 µm/px (40x), painted
{TISSUE_SHARE:.0%} tissue; QC: verdict {qc["verdict"]}, tissue {float(qc["tissue_fraction"]):.1%}
= {width * height * float(qc["tissue_fraction"]) / 1e9:.2f} GPx of tissue at level 0; converted
to DICOM by slidestream_wsi ({all_bytes / MIB:,.0f} MiB in {len(files)} level files).
Model: {m.model_label}, {card.input.tile_size_px} px tiles at {card.input.mpp_um} µm/px, max
batch {card.max_batch_size}, preferred {list(card.preferred_batch_sizes)}; Triton from the
local stack (one CPU instance, Python backend, dynamic batching), the model pushed through the
models API and loaded with its canary. The service reads level {level.index}
({level.width_px:,} x {level.height_px:,} px, {level_bytes / MIB:,.1f} MiB); {runs.planned:,}
tiles planned over QC's usable-tissue mask. Service settings: {settings_text(m)}. Load average
(1 min) at the start: {m.load_at_start:.2f} on {os.cpu_count()} cores, shared with Triton (which
computes on the same cores) and other work.

| measure | value |
|---|---|
{table}

Service throughput: tiles over the time from the first tile read (the level file opened, after
its download) to the events published. Each round runs the service with its default settings
(a new slide id on the same stored objects, in a child process whose peak RSS is its own), the
direct client at the sweep's best, and the service set to that same in-flight count and batch
size (`MAX_REQUESTS_IN_FLIGHT`, `REQUEST_BATCH_TILES`; its own child process), so all three
see the same machine. The direct sweep, on the same tiles decoded and
normalised beforehand ({best.tiles} tiles{subset} per run), tiles/s:

{direct_grid(runs.swept)}

Where the time goes (Triton's statistics; per request: queue = waiting in Triton's scheduler,
compute = copying in, running the model, copying out):

- service, default settings, all rounds: {service_stats.describe()}
- service set to the direct client's best, all rounds: {tuned_stats.describe()}
- direct, all rounds: {direct_stats.describe()}
- naive: {runs.naive.stats.describe()}

The service's runs sent requests of {sent_tiles} tiles, {sent_in_flight} in flight (by default
the card's largest preferred batch, {request_batch_size(card)}). Which batch runs fastest per
tile depends on the model and the
hardware (here the sweep's best was {best.in_flight} in flight x {best.batch_size} tiles; model
time per tile above); `REQUEST_BATCH_TILES` and `MAX_REQUESTS_IN_FLIGHT` set the service to
what the sweep finds for a deployment. The service's own CPU per tile (decode, normalise,
gRPC, outputs) runs on the cores Triton computes on here, which is most of what remains
between the service set to the sweep's best and the direct client.
"""


# -- the parent ------------------------------------------------------------------------------


def measure(args: argparse.Namespace, env: dict[str, str]) -> Measured:
    """The model pushed and loaded, the slide stored, every run, then all of it removed."""
    from tests.support.stack import object_store

    load_at_start = os.getloadavg()[0]
    folder = prepared_slide(args.size)
    model_folder, model_label = model_dir(args.model_dir)
    store = object_store(env)
    slide_ids = [uuid4() for _ in range(ROUNDS)]
    settings = {"decode_threads": args.decode_threads, "max_requests_in_flight": args.in_flight}
    if args.request_batch_tiles is not None:
        settings["request_batch_tiles"] = args.request_batch_tiles
    delete_prefix(store, "models", f"{BENCH_MODEL}/")  # what a killed run left behind
    try:
        card, _ = push_and_load(env, model_folder)
        events = upload_slide(store, folder, slide_ids)
        runs = measure_runs(env, folder, card, events, settings)
    finally:
        unload(env)
        delete_prefix(store, "models", f"{BENCH_MODEL}/")
        for slide_id in slide_ids:
            for bucket in ("converted", "derived"):
                delete_prefix(store, bucket, f"{TENANT}/{slide_id}/")
    return Measured(args.size, folder, events[0], card, model_label, settings, runs, load_at_start)


def measure_runs(
    env: dict[str, str],
    folder: Path,
    card: ModelCardV1,
    events: list[SlideQcV1],
    settings: dict[str, int],
) -> Runs:
    """The direct sweep (which in-flight count and batch size serve Triton best), then
    :data:`ROUNDS` rounds of a service run, a direct run at that best and a service run set to
    that best, alternating (all see the same machine, shared with other work), then the naive
    path."""
    outputs = tuple(output.name for output in card.outputs)
    target = ModelTarget(env["TRITON_GRPC"], card.name, card.version, card.input.name, outputs)
    tiles = open_level(folder, events[0], card)
    try:
        ready = predecoded(tiles, card.input, DIRECT_TILES_MAX)
        print(f"direct: {len(ready)} tiles ({ready.nbytes / MIB:.0f} MiB)", file=sys.stderr)
        sample = ready[:: max(1, len(ready) // SWEEP_TILES)][:SWEEP_TILES]
        swept = client_run(sweep(target, sample, DIRECT_IN_FLIGHT, batch_sizes(card)))
        best = max(swept, key=lambda run: run.tiles_per_s)
        tuned = {
            **settings,
            "max_requests_in_flight": best.in_flight,
            "request_batch_tiles": best.batch_size,
        }
        with tempfile.TemporaryDirectory(prefix="bench-inference-", dir=CACHE) as scratch:
            children = {
                name: ServiceChild(service_arguments(env, card, chosen, f"{scratch}/{name}"))
                for name, chosen in (("default", settings), ("tuned", tuned))
            }
            try:
                rounds = alternate(children, target, events, ready, best)
                peak = children["default"].peak_rss_bytes()
            finally:
                for child in children.values():
                    child.kill()
        del ready, sample
        naive = client_run(naive_path(target, one_by_one(tiles, NAIVE_TILES), card))
        print(f"naive: {naive.tiles_per_s:.1f} tiles/s", file=sys.stderr)
    finally:
        tiles.close()
    return Runs(*rounds, tuned, peak, swept, naive, len(tiles.origins_l0_px))


def alternate(
    children: dict[str, ServiceChild],
    target: ModelTarget,
    events: list[SlideQcV1],
    ready: npt.NDArray[np.float32],
    best: ClientRun,
) -> tuple[list[dict[str, Any]], list[ClientRun], list[dict[str, Any]]]:
    service: list[dict[str, Any]] = []
    direct: list[ClientRun] = []
    tuned: list[dict[str, Any]] = []
    for event in events:
        print("  service, default settings:", file=sys.stderr)
        service.append(service_round(children["default"], target, event))
        direct.append(client_run(saturated_run(target, ready, best.in_flight, best.batch_size)))
        print(f"  direct: {direct[-1].tiles_per_s:.1f} tiles/s", file=sys.stderr)
        print("  service, set to the direct client's best:", file=sys.stderr)
        tuned.append(service_round(children["tuned"], target, event))
    return service, direct, tuned


def service_round(child: ServiceChild, target: ModelTarget, event: SlideQcV1) -> dict[str, Any]:
    """One service run, with Triton's statistics of it."""
    stats = (target.url, target.name, target.version)
    before = client_run(triton_stats(*stats))
    result = child.run(event)
    result["stats"] = client_run(triton_stats(*stats)).minus(before)
    return result


async def naive_path(
    target: ModelTarget, tiles: Iterator[npt.NDArray[np.uint8]], card: ModelCardV1
) -> ClientRun:
    from slidestream_inference.domain.tensors import normalise

    return await naive_run(target, tiles, lambda pixels: normalise(pixels, card.input), NAIVE_TILES)


def service_arguments(
    env: dict[str, str], card: ModelCardV1, settings: dict[str, int], workdir: str
) -> dict[str, object]:
    return {
        "workdir": workdir,
        "s3_endpoint": env["S3_ENDPOINT"],
        "s3_access_key": env["S3_ACCESS_KEY"],
        "s3_secret_key": env["S3_SECRET_KEY"],
        "triton_grpc": env["TRITON_GRPC"],
        "model": card.name,
        "version": card.version,
        "tenant": TENANT,
        "settings": settings,
    }


def main() -> None:
    from slidestream_inference.settings import InferenceSettings

    defaults = InferenceSettings()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--model-dir", type=Path, help="model.pt + card.json (default: the reference model)"
    )
    parser.add_argument("--in-flight", type=int, default=defaults.max_requests_in_flight)
    parser.add_argument("--decode-threads", type=int, default=defaults.decode_threads)
    parser.add_argument("--request-batch-tiles", type=int, default=defaults.request_batch_tiles)
    args = parser.parse_args()
    env = stack_env()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            measured = measure(args, env)
            break
        except TritonGoneError as error:
            if attempt == ATTEMPTS:
                raise SystemExit(f"Triton went away {ATTEMPTS} times: {error}") from error
            print(f"Triton went away ({error}): waiting, then again", file=sys.stderr)
            wait_for_triton(env)
    body = report(measured)
    options = [
        f"--{name.replace('_', '-')} {value}"
        for name, value in vars(args).items()
        if value != parser.get_default(name)
    ]
    command = (
        " ".join(["python -m tests.bench.bench_inference", *options])
        if options
        else "make bench-inference"
    )
    from tests.support.bench_report import write_section

    write_section("inference" if args.size == "full" else f"inference-{args.size}", command, body)
    print(body)


if __name__ == "__main__":
    main()

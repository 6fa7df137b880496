"""The inference benchmark's Triton clients: a saturated direct client on pre-decoded tiles,
the naive path (one tile per request, one at a time), and Triton's own statistics, so that a
reader sees where a run's time went (queued in Triton, or computing)."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient

from slidestream_contracts.model_card import ModelInputV1
from slidestream_inference.adapters.tiles import LevelTiles
from slidestream_inference.domain.tensors import normalise

NS_PER_MS = 1e6
STAGES = ("queue", "compute_input", "compute_infer", "compute_output")
"""Triton's per-request time split (its statistics extension): waiting in the scheduler's
queue, then copying inputs in, running the model, copying outputs out."""


@dataclass(frozen=True, slots=True)
class TritonStats:
    """Triton's cumulative counters of one model version (``ModelStatistics``)."""

    requests: int
    """Successful requests."""
    inferences: int
    """Tiles (batch items) inferred."""
    executions: int
    """Model executions: requests merged by the dynamic batcher count once."""
    stage_ns: dict[str, int]

    def minus(self, before: TritonStats) -> TritonStats:
        return TritonStats(
            self.requests - before.requests,
            self.inferences - before.inferences,
            self.executions - before.executions,
            {stage: self.stage_ns[stage] - before.stage_ns[stage] for stage in STAGES},
        )

    @staticmethod
    def total(parts: Sequence[TritonStats]) -> TritonStats:
        return TritonStats(
            sum(part.requests for part in parts),
            sum(part.inferences for part in parts),
            sum(part.executions for part in parts),
            {stage: sum(part.stage_ns[stage] for part in parts) for stage in STAGES},
        )

    def per_tile_ms(self, stage: str) -> float:
        return self.stage_ns[stage] / NS_PER_MS / max(1, self.inferences)

    def per_request_ms(self, stage: str) -> float:
        return self.stage_ns[stage] / NS_PER_MS / max(1, self.requests)

    def describe(self) -> str:
        batch = self.inferences / max(1, self.executions)
        split = ", ".join(
            f"{stage.replace('_', ' ')} {self.per_request_ms(stage):.1f} ms" for stage in STAGES
        )
        return (
            f"{self.requests} requests, {self.executions} executions "
            f"(mean {batch:.1f} tiles each); per request: {split}; model time per tile "
            f"{self.per_tile_ms('compute_infer'):.2f} ms"
        )


async def triton_stats(url: str, model: str, version: str) -> TritonStats:
    client = InferenceServerClient(url)
    try:
        answer: Any = await client.get_inference_statistics(
            model_name=model, model_version=version, as_json=True
        )
    finally:
        await client.close()
    [stats] = answer["model_stats"]
    inference = stats.get("inference_stats", {})
    return TritonStats(
        requests=int(inference.get("success", {}).get("count", 0)),
        inferences=int(stats.get("inference_count", 0)),
        executions=int(stats.get("execution_count", 0)),
        stage_ns={stage: int(inference.get(stage, {}).get("ns", 0)) for stage in STAGES},
    )


@dataclass(frozen=True, slots=True)
class ClientRun:
    in_flight: int
    batch_size: int
    tiles: int
    seconds: float
    stats: TritonStats

    @property
    def tiles_per_s(self) -> float:
        return self.tiles / self.seconds


@dataclass(frozen=True, slots=True)
class ModelTarget:
    url: str
    name: str
    version: str
    input_name: str
    output_names: tuple[str, ...]


async def _infer(
    client: InferenceServerClient, target: ModelTarget, batch: npt.NDArray[np.float32]
) -> None:
    tensor = InferInput(target.input_name, list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    result = await client.infer(
        target.name,
        [tensor],
        model_version=target.version,
        outputs=[InferRequestedOutput(name) for name in target.output_names],
    )
    for name in target.output_names:
        result.as_numpy(name)  # decoded, as a real client does


async def saturated_run(
    target: ModelTarget, tiles: npt.NDArray[np.float32], in_flight: int, batch_size: int
) -> ClientRun:
    """Every tile of ``tiles`` sent in requests of ``batch_size``, ``in_flight`` at a time."""
    client = InferenceServerClient(target.url)
    try:
        await _infer(client, target, tiles[:batch_size])  # the channel open before timing
        starts = iter(range(0, len(tiles), batch_size))
        before = await triton_stats(target.url, target.name, target.version)

        async def sender() -> None:
            for start in starts:  # one shared iterator: each batch is taken once
                await _infer(client, target, tiles[start : start + batch_size])

        started = time.perf_counter()
        async with asyncio.TaskGroup() as senders:
            for _ in range(in_flight):
                senders.create_task(sender())
        seconds = time.perf_counter() - started
        after = await triton_stats(target.url, target.name, target.version)
    finally:
        await client.close()
    return ClientRun(in_flight, batch_size, len(tiles), seconds, after.minus(before))


async def sweep(
    target: ModelTarget,
    tiles: npt.NDArray[np.float32],
    in_flights: Sequence[int],
    batch_sizes: Sequence[int],
) -> list[ClientRun]:
    runs = []
    for in_flight, batch_size in itertools.product(in_flights, batch_sizes):
        run = await saturated_run(target, tiles, in_flight, batch_size)
        print(
            f"  direct in-flight {in_flight:2d} x batch {batch_size:3d}: "
            f"{run.tiles_per_s:8.1f} tiles/s",
            file=sys.stderr,
        )
        runs.append(run)
    return runs


async def naive_run(
    target: ModelTarget,
    tiles: Iterator[npt.NDArray[np.uint8]],
    prepare: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]],
    count: int,
) -> ClientRun:
    """``count`` tiles, each read, normalised and sent alone, one request at a time."""
    client = InferenceServerClient(target.url)
    try:
        await _infer(client, target, prepare(next(tiles)))
        before = await triton_stats(target.url, target.name, target.version)
        sent = 0
        started = time.perf_counter()
        for tile in itertools.islice(tiles, count):
            await _infer(client, target, prepare(tile))
            sent += 1
        seconds = time.perf_counter() - started
        after = await triton_stats(target.url, target.name, target.version)
    finally:
        await client.close()
    return ClientRun(1, 1, sent, seconds, after.minus(before))


# -- the same tiles the service reads ---------------------------------------------------------


def predecoded(tiles: LevelTiles, model_input: ModelInputV1, most: int) -> npt.NDArray[np.float32]:
    """Every planned tile (or ``most`` evenly spaced ones), read and normalised as the service
    reads and normalises them."""
    total = len(tiles.origins_l0_px)
    if total <= most:
        batches = [batch for _, part in tiles.parts(1, 64) for batch in part]
    else:
        batches = [next(part) for _, part in tiles.parts(most, 1)]
    return np.concatenate([normalise(batch.pixels, model_input) for batch in batches])


def one_by_one(tiles: LevelTiles, count: int) -> Iterator[npt.NDArray[np.uint8]]:
    """``count`` + 1 evenly spaced tiles of the plan (one to open the channel), each read only
    when asked for, as ``(1, S, S, 3)``."""
    for _, part in tiles.parts(count + 1, 1):
        yield next(part).pixels

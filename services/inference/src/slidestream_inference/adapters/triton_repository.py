"""Triton's model repository API, as the models API uses it (explicit model control).

Load, unload, the per-version states of the repository index, where a model's instances run,
its statistics, and the canary request. Over ``tritonclient.grpc.aio``: one short-lived
channel per call, made inside the running event loop (a grpc.aio channel belongs to the loop
that made it, and these calls are rare: an operator's command, not the slide path).

Errors: Triton unreachable or not answering in time → :class:`TritonUnavailableError` (HTTP 503);
Triton refusing a request (a model that does not load, an unknown model) →
:class:`TritonRefusedError` with Triton's message.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from slidestream_inference.adapters.triton import TritonUnavailableError

_UNREACHABLE = frozenset({"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"})
REPOSITORY_CALL_TIMEOUT_S = 10.0
"""Index, config, statistics and unload: answered from Triton's memory."""
NS_PER_MS = 1_000_000


class TritonRefusedError(Exception):
    """Triton answered with an error (``str()`` is its message)."""


@dataclass(frozen=True, slots=True)
class VersionState:
    version: str
    state: str
    """Triton's: ``READY``, ``LOADING``, ``UNLOADING``, ``UNAVAILABLE``."""
    reason: str


@dataclass(frozen=True, slots=True)
class VersionStatistics:
    version: str
    inference_count: int
    execution_count: int
    queue_ms_mean: float
    """Mean time a request waited in Triton's scheduler queue (dynamic batching included)."""
    compute_ms_mean: float
    """Mean input copy + model execution + output copy per request."""


@dataclass(frozen=True, slots=True)
class CanaryOutcome:
    seconds: float
    shapes: Mapping[str, tuple[int, ...]]
    dtypes: Mapping[str, str]
    """Triton's data type names (``FP32``, ``FP16``)."""


class TritonRepository(Protocol):
    async def states(self, name: str) -> list[VersionState]:
        """The versions of ``name`` Triton knows, with their state (none when not loaded)."""
        ...

    async def load(self, name: str) -> None: ...

    async def unload(self, name: str) -> None: ...

    async def device(self, name: str) -> str:
        """Where the loaded model's instances run: ``cpu``, ``gpu``, or ``gpu:0,1``."""
        ...

    async def statistics(self, name: str) -> list[VersionStatistics]: ...

    async def canary(
        self,
        name: str,
        version: str,
        inputs: Mapping[str, tuple[int, ...]],
        outputs: Sequence[str],
    ) -> CanaryOutcome:
        """Infer zeros of the given FP32 input shapes on one version; the outputs' shapes."""
        ...


def statistics_from_json(entry: Mapping[str, Any]) -> VersionStatistics:
    """One entry of Triton's statistics extension (JSON of the protobuf: 64-bit counts are
    strings, zero fields are absent)."""
    stats = entry.get("inference_stats", {})

    def ns(part: str) -> int:
        return int(stats.get(part, {}).get("ns", 0))

    def count(part: str) -> int:
        return int(stats.get(part, {}).get("count", 0))

    queued = count("queue")
    computed = count("compute_infer")
    compute_ns = ns("compute_input") + ns("compute_infer") + ns("compute_output")
    return VersionStatistics(
        version=str(entry.get("version", "")),
        inference_count=int(entry.get("inference_count", 0)),
        execution_count=int(entry.get("execution_count", 0)),
        queue_ms_mean=ns("queue") / queued / NS_PER_MS if queued else 0.0,
        compute_ms_mean=compute_ns / computed / NS_PER_MS if computed else 0.0,
    )


def merge_statistics(
    replicas: Sequence[Sequence[VersionStatistics]],
) -> list[VersionStatistics]:
    """The statistics of several replicas as one model's: counts summed, means weighted by the
    inferences each replica ran."""
    by_version: dict[str, list[VersionStatistics]] = {}
    for entries in replicas:
        for entry in entries:
            by_version.setdefault(entry.version, []).append(entry)
    return [_merged(version, entries) for version, entries in by_version.items()]


def _merged(version: str, entries: Sequence[VersionStatistics]) -> VersionStatistics:
    if len(entries) == 1:
        return entries[0]
    inferences = sum(entry.inference_count for entry in entries)

    def mean(of: Callable[[VersionStatistics], float]) -> float:
        weighted = sum(of(entry) * entry.inference_count for entry in entries)
        return weighted / inferences if inferences else 0.0

    return VersionStatistics(
        version=version,
        inference_count=inferences,
        execution_count=sum(entry.execution_count for entry in entries),
        queue_ms_mean=mean(lambda entry: entry.queue_ms_mean),
        compute_ms_mean=mean(lambda entry: entry.compute_ms_mean),
    )


def device_of_config(config: Mapping[str, Any]) -> str:
    """``cpu`` or ``gpu`` (``gpu:<ids>`` when the instance groups name their GPUs); Triton
    fills in ``KIND_GPU`` for a group without a kind when it has GPUs, so read the loaded
    config, not the file in the bucket."""
    groups = config.get("instance_group", [])
    gpus = sorted({int(gpu) for group in groups for gpu in group.get("gpus", [])})
    if any(group.get("kind", "KIND_GPU") == "KIND_GPU" for group in groups):
        return "gpu:" + ",".join(map(str, gpus)) if gpus else "gpu"
    return "cpu"


class GrpcTritonRepository:
    def __init__(self, url: str, *, load_timeout_s: float, canary_timeout_s: float) -> None:
        self._url = url
        self._load_timeout_s = load_timeout_s
        self._canary_timeout_s = canary_timeout_s

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[InferenceServerClient]:
        client = InferenceServerClient(self._url)
        try:
            yield client
        except InferenceServerException as error:
            if error.status() in _UNREACHABLE:
                raise TritonUnavailableError(f"Triton at {self._url}: {error.message()}") from error
            raise TritonRefusedError(error.message()) from error
        finally:
            await client.close()

    async def states(self, name: str) -> list[VersionState]:
        async with self._client() as client:
            index = await client.get_model_repository_index(
                as_json=True, client_timeout=REPOSITORY_CALL_TIMEOUT_S
            )
        return [
            VersionState(
                version=str(entry["version"]),
                state=str(entry.get("state", "")),
                reason=str(entry.get("reason", "")),
            )
            for entry in index.get("models", [])
            if entry.get("name") == name and entry.get("version")
        ]

    async def load(self, name: str) -> None:
        async with self._client() as client:
            await client.load_model(name, client_timeout=self._load_timeout_s)

    async def unload(self, name: str) -> None:
        async with self._client() as client:
            await client.unload_model(name, client_timeout=REPOSITORY_CALL_TIMEOUT_S)

    async def device(self, name: str) -> str:
        async with self._client() as client:
            answer = await client.get_model_config(
                name, as_json=True, client_timeout=REPOSITORY_CALL_TIMEOUT_S
            )
        return device_of_config(answer.get("config", {}))

    async def statistics(self, name: str) -> list[VersionStatistics]:
        async with self._client() as client:
            answer = await client.get_inference_statistics(
                name, as_json=True, client_timeout=REPOSITORY_CALL_TIMEOUT_S
            )
        return [statistics_from_json(entry) for entry in answer.get("model_stats", [])]

    async def canary(
        self,
        name: str,
        version: str,
        inputs: Mapping[str, tuple[int, ...]],
        outputs: Sequence[str],
    ) -> CanaryOutcome:
        tensors = []
        for input_name, shape in inputs.items():
            tensor = InferInput(input_name, list(shape), "FP32")
            tensor.set_data_from_numpy(np.zeros(shape, dtype=np.float32))
            tensors.append(tensor)
        requested = [InferRequestedOutput(output) for output in outputs]
        started = time.perf_counter()
        async with self._client() as client:
            result = await client.infer(
                name,
                tensors,
                model_version=version,
                outputs=requested,
                client_timeout=self._canary_timeout_s,
            )
        seconds = time.perf_counter() - started
        shapes: dict[str, tuple[int, ...]] = {}
        dtypes: dict[str, str] = {}
        for output in outputs:
            tensor = result.get_output(output)
            if tensor is None:
                continue
            try:
                # Decoding checks that the bytes Triton sent fill the shape it claims.
                decoded = result.as_numpy(output)
            except ValueError as error:
                raise TritonRefusedError(f"output {output} does not decode: {error}") from error
            shapes[output] = tuple(int(side) for side in decoded.shape)
            dtypes[output] = str(tensor.datatype)
        return CanaryOutcome(seconds=seconds, shapes=shapes, dtypes=dtypes)

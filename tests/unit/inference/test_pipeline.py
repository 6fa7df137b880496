"""The decode/infer pipeline: every batch once, never more requests in flight than allowed,
and the first failure raised as it is."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from slidestream_inference.pipeline import run_bounded
from slidestream_platform.errors import RetryableError
from slidestream_wsi.pyramid import TileBatch


def batches(start: int, count: int, size: int) -> Iterator[TileBatch]:
    for first in range(start, start + count, size):
        n = min(size, start + count - first)
        origins = np.stack([np.arange(first, first + n), np.zeros(n)], axis=1).astype(np.int64)
        yield TileBatch(np.zeros((n, 2, 2, 3), np.uint8), origins)


def prepare(batch: TileBatch) -> np.ndarray:
    return batch.origins_px[:, 0].astype(np.float32)  # the tile numbers, to check positions


async def test_every_tile_is_sent_once_at_its_position_with_in_flight_bounded() -> None:
    seen: dict[int, float] = {}
    in_flight = peak = 0

    async def send(start: int, prepared: np.ndarray) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        for offset, value in enumerate(prepared):
            assert start + offset not in seen
            seen[start + offset] = float(value)

    parts = [(0, batches(0, 37, 4)), (37, batches(37, 40, 4)), (77, batches(77, 3, 4))]
    await run_bounded(parts, prepare=prepare, send=send, decode_threads=3, in_flight=3)
    assert seen == {index: float(index) for index in range(80)}
    assert 1 < peak <= 3


async def test_the_first_failure_is_raised_as_itself_and_stops_the_rest() -> None:
    sent = 0

    async def send(start: int, prepared: np.ndarray) -> None:
        nonlocal sent
        sent += 1
        if sent == 3:
            raise RetryableError("Triton went away", reason="triton-unavailable")
        await asyncio.sleep(0.001)

    with pytest.raises(RetryableError, match="Triton went away"):
        await run_bounded(
            [(0, batches(0, 400, 2))], prepare=prepare, send=send, decode_threads=2, in_flight=2
        )
    assert sent < 200


async def test_a_decode_error_in_a_thread_reaches_the_caller() -> None:
    def broken(batch: TileBatch) -> np.ndarray:
        raise ValueError("tile does not decode")

    async def send(start: int, prepared: np.ndarray) -> None:
        raise AssertionError("nothing is sent")

    with pytest.raises(ValueError, match="does not decode"):
        await run_bounded(
            [(0, batches(0, 8, 2))], prepare=broken, send=send, decode_threads=1, in_flight=1
        )

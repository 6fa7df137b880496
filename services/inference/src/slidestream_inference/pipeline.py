"""Decode on threads, infer with a bounded number of requests in flight.

``decode_threads`` producers each walk their own run of the tile plan on a worker thread
(decode, resample, normalise: NumPy and the codecs release the GIL) and put the prepared
batches on a queue of ``in_flight`` places; ``in_flight`` senders take batches off it and each
keeps one request outstanding. So at most ``in_flight`` requests are in flight and at most
``in_flight`` prepared batches wait (plus one being prepared per thread): memory is bounded by
the settings, never by the slide. The first failure anywhere cancels the rest and is raised
as it is (a :class:`~slidestream_platform.errors.RetryableError` stays retryable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from slidestream_wsi.pyramid import TileBatch

Prepared = npt.NDArray[np.float32]
Prepare = Callable[[TileBatch], Prepared]
Send = Callable[[int, Prepared], Awaitable[None]]
"""Infer one prepared batch whose first tile is at the given plan position, and keep the result."""


def _next_prepared(batches: Iterator[TileBatch], prepare: Prepare) -> tuple[int, Prepared] | None:
    batch = next(batches, None)
    if batch is None:
        return None
    return len(batch.origins_px), prepare(batch)


async def run_bounded(
    parts: Sequence[tuple[int, Iterator[TileBatch]]],
    *,
    prepare: Prepare,
    send: Send,
    decode_threads: int,
    in_flight: int,
) -> None:
    """Every batch of ``parts`` (first plan position, batches) prepared and sent."""
    if decode_threads < 1 or in_flight < 1:
        raise ValueError("a pipeline needs at least one thread and one request in flight")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Prepared] | None] = asyncio.Queue(maxsize=in_flight)

    with ThreadPoolExecutor(decode_threads, thread_name_prefix="inference-decode") as pool:

        async def produce(position: int, batches: Iterator[TileBatch]) -> None:
            while got := await loop.run_in_executor(pool, _next_prepared, batches, prepare):
                count, prepared = got
                await queue.put((position, prepared))
                position += count

        async def produce_all() -> None:
            async with asyncio.TaskGroup() as producers:
                for start, batches in parts:
                    producers.create_task(produce(start, batches))
            for _ in range(in_flight):
                await queue.put(None)  # one end mark per sender

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                await send(*item)

        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(produce_all())
                for _ in range(in_flight):
                    tasks.create_task(consume())
        except BaseExceptionGroup as group:
            raise first_error(group) from None


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real failure in a task group's (possibly nested) group of them."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_error(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return group.exceptions[0]

"""Tile work on the thread pool: decoding source tile rows ahead of their use, and encoding
retiled rows while handing the encoded tiles on in tile order."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future

import numpy as np

from slidestream_wsi.convert.pixels import encode_jpeg
from slidestream_wsi.pyramid import Pixels, SourceLevel

WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
"""Threads that decode and encode tiles: imagecodecs releases the GIL while it works, so tile
work runs on every core this process may use while the main thread copies and writes."""
TILES_PER_TASK = 8
"""Tiles per pool task: small enough that the cores share a tile row, large enough that the
task overhead (tens of µs) is small against ~1 ms of JPEG work per tile."""
MAX_PENDING_TASKS = 4 * WORKERS
"""Encode tasks one level may have in flight: bounds the tiles held while the pool catches
up (memory stays that of a few tile rows)."""

DecodedRow = tuple[list[bytes | None], list[Pixels], int]
"""A tile row's stored tiles, its decoded tiles and the index of its first tile."""


def _decode_tiles(
    level: SourceLevel, raws: Sequence[bytes | None], indices: Sequence[int]
) -> list[Pixels]:
    return [level.decode(raw, index) for raw, index in zip(raws, indices, strict=True)]


def _encode_tiles(tiles: Sequence[Pixels], quality: int) -> list[bytes]:
    return [encode_jpeg(tile, quality) for tile in tiles]


class EncodedStream:
    """Encodes tile rows on the pool and hands the encoded tiles on in tile order, so that the
    output bytes do not depend on which thread finished first."""

    def __init__(self, pool: Executor, quality: int, emit: Callable[[list[bytes]], None]) -> None:
        self._pool = pool
        self._quality = quality
        self._emit = emit
        self._pending: deque[Future[list[bytes]]] = deque()

    def add_row(self, tiles: list[Pixels]) -> None:
        for start in range(0, len(tiles), TILES_PER_TASK):
            chunk = tiles[start : start + TILES_PER_TASK]
            self._pending.append(self._pool.submit(_encode_tiles, chunk, self._quality))
        while len(self._pending) > MAX_PENDING_TASKS:  # bounds the tiles held in memory
            self._emit(self._pending.popleft().result())

    def collect(self, *, wait: bool) -> None:
        while self._pending and (wait or self._pending[0].done()):
            self._emit(self._pending.popleft().result())


def decoded_rows(pool: Executor, level: SourceLevel) -> Iterator[DecodedRow]:
    """Each tile row's stored tiles, its decoded tiles and its first index; the pool decodes
    row r + 1 while the caller works on row r."""

    def start(raws: list[bytes | None], first: int) -> list[Future[list[Pixels]]]:
        indices = list(range(first, first + len(raws)))
        tasks = []
        for at in range(0, len(indices), TILES_PER_TASK):
            chunk = indices[at : at + TILES_PER_TASK]
            chunk_raws = [raws[index - first] for index in chunk]
            tasks.append(pool.submit(_decode_tiles, level, chunk_raws, chunk))
        return tasks

    upcoming: tuple[list[bytes | None], int, list[Future[list[Pixels]]]] | None = None
    for first, last in _row_ranges(level):
        raws = level.read_raws(first, last)
        current = (raws, first, start(raws, first))
        if upcoming is not None:
            yield upcoming[0], [p for task in upcoming[2] for p in task.result()], upcoming[1]
        upcoming = current
    if upcoming is not None:
        yield upcoming[0], [p for task in upcoming[2] for p in task.result()], upcoming[1]


def band(level: SourceLevel, row: int, decoded: list[Pixels]) -> Pixels:
    """The decoded tile row as a band of the level's width (edge padding cut off)."""
    top = row * level.tile_height
    band_height = min(level.tile_height, level.height - top)
    return np.concatenate(decoded, axis=1)[:band_height, : level.width]


def _row_ranges(level: SourceLevel) -> Iterator[tuple[int, int]]:
    """First and past-the-last tile index of each tile row, top to bottom."""
    for row in range(level.rows):
        first = row * level.columns
        yield first, min(first + level.columns, level.tile_count)

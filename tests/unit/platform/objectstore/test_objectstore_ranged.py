"""RangedObjectSource: random access to a stored object by ranged GETs, one block cache."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import pytest

from slidestream_platform.objectstore.ranged import RangedObjectSource
from tests.support.fakes import MemoryStore

DATA = random.Random(3).randbytes(10_000)


def _source(store: MemoryStore, **options: int) -> RangedObjectSource:
    store.objects[("quarantine", "slide")] = DATA
    return RangedObjectSource(store, "quarantine", "slide", len(DATA), name="original", **options)


def test_reads_seek_and_read_like_a_file_and_share_one_cache() -> None:
    source = _source(MemoryStore(), block_bytes=1000)
    rng = random.Random(5)
    with source.open() as first, source.open() as second:
        for reader in (first, second) * 20:
            offset, length = rng.randint(0, len(DATA) + 50), rng.randint(0, 2500)
            reader.seek(offset)
            assert reader.read(length) == DATA[offset : offset + length]
        assert first.seek(0, io.SEEK_END) == len(DATA)
    assert source.requests <= 10  # ten blocks, each fetched once at most
    assert source.bytes_fetched <= len(DATA)
    blocks = source.fetched_blocks()
    assert all(DATA[offset : offset + len(data)] == data for offset, data in blocks)


def test_consecutive_missing_blocks_are_one_request() -> None:
    source = _source(MemoryStore(), block_bytes=1000)
    assert source.read_at(500, 5000) == DATA[500:5500]
    assert source.requests == 1
    assert source.bytes_fetched == 6000
    assert [offset for offset, _ in source.fetched_blocks()] == [0, 1000, 2000, 3000, 4000, 5000]


def test_evicted_blocks_are_fetched_again() -> None:
    source = _source(MemoryStore(), block_bytes=1000, max_cached_blocks=2)
    for offset in (0, 3000, 6000, 0):
        assert source.read_at(offset, 10) == DATA[offset : offset + 10]
    assert source.requests == 4
    assert len(source.fetched_blocks()) == 3


class _FailingStore(MemoryStore):
    @contextmanager
    def open_stream(
        self, bucket: str, key: str, *, offset: int = 0, length: int | None = None
    ) -> Iterator[BinaryIO]:
        raise ConnectionResetError("the store went away")
        yield io.BytesIO()  # pragma: no cover - makes this a generator


def test_a_failed_request_is_remembered_for_the_caller() -> None:
    source = _source(_FailingStore(), block_bytes=1000)
    with pytest.raises(ConnectionResetError), source.open() as reader:
        reader.read(10)
    assert isinstance(source.failure, ConnectionResetError)


def test_an_object_shorter_than_its_stat_is_a_failure() -> None:
    store = MemoryStore()
    source = _source(store, block_bytes=1000)
    store.objects[("quarantine", "slide")] = DATA[:5000]  # replaced after the stat
    with pytest.raises(OSError, match="short ranged read"):
        source.read_at(4000, 2000)
    assert source.failure is not None

"""One-pass hashing and read-ahead helpers of the object store."""

from __future__ import annotations

import hashlib
import io

import pytest

from slidestream_platform.objectstore.streams import HashingReader, PrefixedReader, read_up_to


class TrickleStream(io.RawIOBase):
    """Returns at most ``chunk`` bytes per read, like a socket: short reads are legal."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data = memoryview(data)
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._chunk, len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


DATA = bytes(range(256)) * 1000 + b"tail"


def test_hashing_reader_hashes_exactly_what_it_hands_out() -> None:
    reader = HashingReader(io.BytesIO(DATA))
    first = reader.read(1000)
    rest = reader.read()
    assert first + rest == DATA
    assert reader.bytes_read == len(DATA)
    assert reader.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_hashing_reader_reports_eof_only_after_the_source_ends() -> None:
    reader = HashingReader(io.BytesIO(b"abc"))
    assert reader.read(3) == b"abc"
    assert not reader.at_eof
    assert reader.read(3) == b""
    assert reader.at_eof
    assert reader.read(0) == b""


def test_hashing_reader_returns_bytes_for_bytearray_sources() -> None:
    class ByteArraySource:
        def read(self, size: int = -1, /) -> bytes:
            return bytearray(b"xy")  # type: ignore[return-value]

    data = HashingReader(ByteArraySource()).read(2)
    assert type(data) is bytes


def test_read_up_to_gathers_short_reads() -> None:
    stream = TrickleStream(DATA, chunk=997)
    assert read_up_to(stream, 1000) == DATA[:1000]
    assert read_up_to(stream, 10**9) == DATA[1000:]
    assert read_up_to(stream, 10) == b""


@pytest.mark.parametrize("split", [0, 1, 100, len(DATA)])
def test_prefixed_reader_replays_the_read_ahead_then_continues(split: int) -> None:
    source = io.BytesIO(DATA)
    head = source.read(split)
    reader = PrefixedReader(head, source)
    assert read_up_to(reader, 50) + reader.read() == DATA


def test_hashing_through_a_prefixed_reader_matches_the_whole_stream() -> None:
    # The put path: hash while reading one part ahead, then replay it to the SDK.
    hashing = HashingReader(TrickleStream(DATA, chunk=4096))
    head = read_up_to(hashing, 10_000)
    replay = PrefixedReader(head, hashing)
    assert read_up_to(replay, 10**9) == DATA
    assert hashing.hexdigest() == hashlib.sha256(DATA).hexdigest()

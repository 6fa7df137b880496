"""Random access to a stored object through ranged GETs, for readers that only need parts.

A slide's structure (TIFF IFDs, tag values, one tile per level) is a small share of its bytes
and sits in a few places; reading those places where the object lives, instead of downloading
the whole object first, is what lets de-identification stream a multi-GB slide once. The
readers of one :class:`RangedObjectSource` share one block cache, so the many small reads of a
parser (and its re-reads by tifffile, the validator and the inventory) cost a few requests.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from typing import Any, BinaryIO, cast

from slidestream_platform.objectstore.port import ObjectStore

RANGE_BLOCK_BYTES = 256 * 1024
"""Bytes fetched per block: a TIFF directory and its values usually fit in one."""
MAX_CACHED_BLOCKS = 1024
"""Blocks kept (256 MiB at most); the oldest go first past this."""


class RangedObjectSource:
    """One object version, read by ranges (``size_bytes`` is the caller's, from a stat).

    Satisfies ``slidestream_wsi.source.SlideSource``: :meth:`open` gives a seekable reader.
    Counts the requests and bytes fetched, and remembers which ranges were fetched, so that a
    caller can lay exactly those bytes out again (:meth:`fetched_blocks`).
    """

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        key: str,
        size_bytes: int,
        *,
        name: str,
        block_bytes: int = RANGE_BLOCK_BYTES,
        max_cached_blocks: int = MAX_CACHED_BLOCKS,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._size = size_bytes
        self._name = name
        self._block = block_bytes
        self._max_blocks = max_cached_blocks
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._seen: set[int] = set()
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes_fetched = 0
        self.failure: BaseException | None = None
        """The first failed request. Parsers turn any read error into "corrupt input": a caller
        that sees one here knows the store, not the slide, failed (retry, not dead-letter)."""

    @property
    def name(self) -> str:
        return self._name

    @property
    def size_bytes(self) -> int:
        return self._size

    def open(self) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(_RangeReader(self), buffer_size=64 * 1024))

    def read_at(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)``, short at the end of the object."""
        end = min(offset + max(length, 0), self._size)
        if end <= offset:
            return b""
        first, last = offset // self._block, (end - 1) // self._block
        with self._lock:
            blocks = self._blocks(first, last)
        joined = b"".join(blocks)
        start = offset - first * self._block
        return joined[start : start + end - offset]

    def fetched_blocks(self) -> list[tuple[int, bytes]]:
        """``(offset, bytes)`` of every block read so far (refetched if evicted), in order."""
        with self._lock:
            indices = sorted(self._seen)
        return [
            (index * self._block, self.read_at(index * self._block, self._block))
            for index in indices
        ]

    def _blocks(self, first: int, last: int) -> list[bytes]:
        missing = [index for index in range(first, last + 1) if index not in self._cache]
        # One request per run of consecutive missing blocks.
        runs: list[tuple[int, int]] = []
        for index in missing:
            if runs and runs[-1][1] == index - 1:
                runs[-1] = (runs[-1][0], index)
            else:
                runs.append((index, index))
        for run_first, run_last in runs:
            offset = run_first * self._block
            length = min((run_last + 1) * self._block, self._size) - offset
            try:
                with self._store.open_stream(
                    self._bucket, self._key, offset=offset, length=length
                ) as stream:
                    data = stream.read(length)
                if len(data) != length:
                    # The object is shorter than its stat said: it changed under us.
                    raise OSError(f"short ranged read: {len(data)} of {length} bytes")
            except BaseException as error:
                self.failure = self.failure or error
                raise
            self.requests += 1
            self.bytes_fetched += length
            for index in range(run_first, run_last + 1):
                at = (index - run_first) * self._block
                self._cache[index] = data[at : at + self._block]
                self._seen.add(index)
        out = []
        for index in range(first, last + 1):
            self._cache.move_to_end(index)
            out.append(self._cache[index])
        while len(self._cache) > max(self._max_blocks, last - first + 1):
            self._cache.popitem(last=False)
        return out


class _RangeReader(io.RawIOBase):
    def __init__(self, source: RangedObjectSource) -> None:
        super().__init__()
        self._source = source
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._source.size_bytes}
        position = base[whence] + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read_at(self._position, len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

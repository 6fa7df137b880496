"""In-place patching of a TIFF copy: the only writer of de-identified TIFF bytes.

Every change is one of: overwrite bytes with zeros, rewrite an IFD's entry list (entries stay
sorted, TIFF 6.0 §2), change an entry's value (in its old place when it fits, else appended at
the end of the file on a word boundary, TIFF 6.0 §2 "Value/Offset"), or change a next-IFD
pointer. Tile and strip data of kept images are never written: every zeroing is checked against
the protected ranges first. The patcher counts the bytes it writes.
"""

from __future__ import annotations

import bisect
import io
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt

from slidestream_wsi.errors import CorruptSlideError
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.source import SlideSource
from slidestream_wsi.tiff.structure import FIELD_TYPE_SIZE_BYTES, Ifd, TiffStructure, read_ifd

_ZERO_CHUNK_BYTES = 1024 * 1024
_READ_BUFFER_BYTES = 64 * 1024


class ProtectedRanges:
    """Byte ranges that must not change (kept image data, kept IFDs and kept values).

    Held as two sorted NumPy arrays of merged ``[start, end)`` ranges: a level 0 brings tens of
    thousands of tile ranges, and one Python tuple each costs more (allocation and the garbage
    collector's passes over a service's large heap: 0.12 s for 32k tiles) than the whole
    structure pass.
    """

    def __init__(self, starts: npt.ArrayLike, ends: npt.ArrayLike) -> None:
        starts_all = np.asarray(starts, dtype=np.int64).ravel()
        ends_all = np.asarray(ends, dtype=np.int64).ravel()
        keep = ends_all > starts_all
        order = np.argsort(starts_all[keep], kind="stable")
        ordered_starts, ordered_ends = starts_all[keep][order], ends_all[keep][order]
        if not ordered_starts.size:
            self._starts, self._ends = ordered_starts, ordered_ends
            return
        reach = np.maximum.accumulate(ordered_ends)
        # A range that starts at or before the furthest end so far joins that run.
        opens = np.concatenate(([True], ordered_starts[1:] > reach[:-1]))
        closes = np.concatenate((opens[1:], [True]))
        self._starts = ordered_starts[opens]
        self._ends = reach[closes]

    @classmethod
    def of(cls, ranges: Sequence[tuple[int, int]]) -> ProtectedRanges:
        pairs = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
        return cls(pairs[:, 0], pairs[:, 1])

    def _touching(self, start: int, end: int) -> range:
        """Indices of the merged ranges that overlap ``[start, end)``."""
        first = int(np.searchsorted(self._ends, start, side="right"))
        stop = int(np.searchsorted(self._starts, end, side="left"))
        return range(first, max(first, stop))

    def overlaps(self, start: int, end: int) -> bool:
        return len(self._touching(start, end)) > 0

    def subtract(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` outside every protected range."""
        pieces: list[tuple[int, int]] = []
        cursor = start
        for index in self._touching(start, end):
            r_start, r_end = int(self._starts[index]), int(self._ends[index])
            if r_start > cursor:
                pieces.append((cursor, r_start))
            cursor = max(cursor, r_end)
        if cursor < end:
            pieces.append((cursor, end))
        return pieces


class TiffPatcher:
    def __init__(
        self,
        fh: BinaryIO,
        structure: TiffStructure,
        protected: ProtectedRanges,
        limits: SlideLimits,
    ) -> None:
        self._fh = fh
        self._s = structure
        self._protected = protected
        self._limits = limits
        self.bytes_written = 0

    # -- raw writes ---------------------------------------------------------------------------

    def _write(self, offset: int, data: bytes) -> None:
        self._fh.seek(offset)
        self._fh.write(data)
        self.bytes_written += len(data)

    def _zero_unchecked(self, start: int, end: int) -> None:
        position = start
        while position < end:
            n = min(_ZERO_CHUNK_BYTES, end - position)
            self._write(position, bytes(n))
            position += n

    def wipe(self, start: int, end: int) -> None:
        """Zero ``[start, end)`` except where it overlaps protected bytes (shared values)."""
        for piece_start, piece_end in self._protected.subtract(start, end):
            self._zero_unchecked(piece_start, piece_end)

    def wipe_image_data(self, start: int, end: int) -> None:
        """Zero a removed image's pixel data; refuse if a kept image shares those bytes."""
        if self._protected.overlaps(start, end):
            raise CorruptSlideError("a removed image shares pixel data with a kept image")
        self._zero_unchecked(start, end)

    def append(self, data: bytes) -> int:
        """Write ``data`` at the end of the file on a word boundary; return its offset."""
        self._fh.seek(0, 2)
        end = self._fh.tell()
        if end % 2:
            self._write(end, b"\x00")
            end += 1
        self._s.pack_offset(end + len(data))  # refuses offsets a classic TIFF cannot hold
        self._write(end, data)
        self._s.file_size_bytes = end + len(data)
        return end

    # -- structure edits ----------------------------------------------------------------------

    def _reload(self, ifd: Ifd) -> None:
        fresh = read_ifd(self._fh, self._s, ifd.offset, self._limits)
        ifd.entries = fresh.entries
        ifd.entry_order = fresh.entry_order
        ifd.next_pointer_offset = fresh.next_pointer_offset
        ifd.next_offset = fresh.next_offset

    def remove_entries(self, ifd: Ifd, codes: set[int]) -> None:
        """Drop entries from an IFD in place; the block shrinks and its tail is zeroed."""
        codes = codes & set(ifd.entries)
        if not codes:
            return
        s = self._s
        self._fh.seek(ifd.offset + s.count_nbytes)
        old = self._fh.read(len(ifd.entry_order) * s.entry_nbytes)
        kept = [
            old[i * s.entry_nbytes : (i + 1) * s.entry_nbytes]
            for i, code in enumerate(ifd.entry_order)
            if code not in codes
        ]
        if not kept:
            raise CorruptSlideError("an IFD would be left without entries")
        block = s.pack_count(len(kept)) + b"".join(kept) + s.pack_offset(ifd.next_offset)
        old_len = s.count_nbytes + len(old) + s.offset_nbytes
        self._write(ifd.offset, block + bytes(old_len - len(block)))
        self._reload(ifd)

    def set_value(self, ifd: Ifd, code: int, value: bytes, field_type: int | None = None) -> None:
        """Give an existing entry a new value (and count); zero the old value's bytes."""
        s = self._s
        entry = ifd.entries[code]
        ftype = entry.field_type if field_type is None else field_type
        size = FIELD_TYPE_SIZE_BYTES[ftype]
        if len(value) % size:
            raise ValueError("value length is not a multiple of the field type size")
        count = len(value) // size
        old_end = entry.value_offset + entry.value_nbytes
        reusable = (
            not entry.inline
            and len(value) <= entry.value_nbytes
            and not self._protected.overlaps(entry.value_offset, old_end)
        )
        if not entry.inline:
            self.wipe(entry.value_offset, old_end)
        if len(value) <= s.offset_nbytes:
            field = value + bytes(s.offset_nbytes - len(value))
        elif reusable:
            self._write(entry.value_offset, value)
            field = s.pack_offset(entry.value_offset)
        else:
            field = s.pack_offset(self.append(value))
        count_field = struct.pack(s.byteorder + ("Q" if s.bigtiff else "I"), count)
        type_field = struct.pack(s.byteorder + "H", ftype)
        self._write(entry.entry_offset + 2, type_field + count_field + field)
        self._reload(ifd)

    def set_next_pointer(self, pointer_offset: int, value: int) -> None:
        """Point a next-IFD field (or the header's first-IFD field) at ``value``."""
        self._write(pointer_offset, self._s.pack_offset(value))


class PatchOverlay(io.RawIOBase):
    """A read-write view of a read-only base file that keeps every write as a patch.

    Reads return the base bytes with the patches applied; writes past the base's end grow the
    view (the appended bytes are patches too). So the rewrite runs without copying the file, and
    the output is exactly ``base + patches()``: a reader of the view (tifffile takes file
    handles) sees the output, and an object store can build it from the base's unchanged ranges.
    """

    def __init__(self, base: BinaryIO, base_size_bytes: int) -> None:
        super().__init__()
        self._base = base
        self._base_size = base_size_bytes
        self._size = base_size_bytes
        self._position = 0
        self._starts: list[int] = []
        self._extents: list[bytearray] = []

    # -- io.RawIOBase -------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read_range(self._position, len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def write(self, data: Any) -> int:
        raw = bytes(data)
        if raw:
            self._patch(self._position, raw)
            self._position += len(raw)
        return len(raw)

    # -- the view -----------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Size of the output: the base's, or more when bytes were appended."""
        return self._size

    @property
    def base_size_bytes(self) -> int:
        return self._base_size

    def read_range(self, offset: int, length: int) -> bytes:
        """Output bytes ``[offset, offset + length)`` (short at the end of the view)."""
        end = min(offset + max(length, 0), self._size)
        if end <= offset:
            return b""
        out = bytearray(end - offset)
        if offset < self._base_size:
            self._base.seek(offset)
            base = self._base.read(min(end, self._base_size) - offset)
            out[: len(base)] = base
        index = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        for start, extent in zip(self._starts[index:], self._extents[index:], strict=True):
            if start >= end:
                break
            lo, hi = max(start, offset), min(start + len(extent), end)
            if lo < hi:
                out[lo - offset : hi - offset] = extent[lo - start : hi - start]
        return bytes(out)

    def patches(self) -> tuple[tuple[int, bytes], ...]:
        """The writes as sorted, disjoint, non-adjacent ``(offset, bytes)`` runs."""
        return tuple(
            (start, bytes(extent))
            for start, extent in zip(self._starts, self._extents, strict=True)
        )

    def _patch(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        first = bisect.bisect_left(self._starts, offset)
        # Merge with a run that ends at or after our start (touching runs join, so patches stay
        # few and disjoint).
        if first > 0 and self._starts[first - 1] + len(self._extents[first - 1]) >= offset:
            first -= 1
        last = first
        while last < len(self._starts) and self._starts[last] <= end:
            last += 1
        if first == last:
            self._starts.insert(first, offset)
            self._extents.insert(first, bytearray(data))
        else:
            start = min(self._starts[first], offset)
            stop = max(self._starts[last - 1] + len(self._extents[last - 1]), end)
            merged = bytearray(stop - start)
            for run_start, run in zip(
                self._starts[first:last], self._extents[first:last], strict=True
            ):
                merged[run_start - start : run_start - start + len(run)] = run
            merged[offset - start : end - start] = data
            self._starts[first:last] = [start]
            self._extents[first:last] = [merged]
        if end > self._size:
            if offset > self._size:  # a write past the end leaves a hole of zeros (POSIX)
                self._patch(self._size, bytes(offset - self._size))
            self._size = max(self._size, end)


class _ClosingOverlay(PatchOverlay):
    """A patch overlay that closes its base reader with itself."""

    def close(self) -> None:
        if not self.closed:
            self._base.close()
        super().close()


class PatchedSource:
    """``base`` with ``patches`` (sorted, disjoint ``(offset, bytes)`` runs, as
    :meth:`PatchOverlay.patches` gives them) written over it: the output of a de-identification
    that has not been written anywhere, readable like any :class:`SlideSource`."""

    def __init__(
        self, base: SlideSource, patches: Sequence[tuple[int, bytes]], size_bytes: int
    ) -> None:
        self.base = base
        self.patches = tuple(patches)
        self._size_bytes = size_bytes

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    def open(self) -> BinaryIO:
        overlay = _ClosingOverlay(self.base.open(), self.base.size_bytes)
        for offset, data in self.patches:
            overlay.seek(offset)
            overlay.write(data)
        if overlay.size_bytes != self._size_bytes:
            overlay.close()
            raise ValueError("the patches do not give the declared output size")
        overlay.seek(0)
        # Buffered: tifffile and the walkers read many small fields, and every read of the
        # overlay is a read of the base plus a patch lookup.
        return cast(BinaryIO, io.BufferedReader(overlay, buffer_size=_READ_BUFFER_BYTES))


class PatchedStream:
    """The output of a base with patches over it, built from the base's consecutive chunks:
    :meth:`apply` each chunk in order, then :meth:`finish` for the bytes appended past the
    base's end. What :func:`apply_patches` would leave in a file, without a file."""

    def __init__(self, base_size_bytes: int, patches: Sequence[tuple[int, bytes]]) -> None:
        self._base_size = base_size_bytes
        self._patches = sorted(patches, key=lambda patch: patch[0])
        self._position = 0
        self._first = 0  # patches ending at or before the position are done with

    def apply(self, chunk: bytes) -> bytes:
        """The output bytes over the base's next ``len(chunk)`` bytes."""
        position, end = self._position, self._position + len(chunk)
        if end > self._base_size:
            raise ValueError("the base is longer than declared")
        patches = self._patches
        while self._first < len(patches) and _end_of(patches[self._first]) <= position:
            self._first += 1
        out: bytearray | None = None
        for offset, data in patches[self._first :]:
            if offset >= end:
                break
            lo, hi = max(offset, position), min(offset + len(data), end)
            if lo < hi:
                out = bytearray(chunk) if out is None else out
                out[lo - position : hi - position] = data[lo - offset : hi - offset]
        self._position = end
        return chunk if out is None else bytes(out)

    def finish(self) -> bytes:
        """The bytes appended past the base's end (empty if none); checks the base's size."""
        if self._position != self._base_size:
            raise ValueError("the base is shorter than declared")
        tail_end = max(map(_end_of, self._patches), default=0)
        tail = bytearray(max(0, tail_end - self._base_size))
        for offset, data in self._patches:
            lo = max(offset, self._base_size)
            if lo < offset + len(data):
                tail[lo - self._base_size : offset + len(data) - self._base_size] = data[
                    lo - offset :
                ]
        return bytes(tail)


def _end_of(patch: tuple[int, bytes]) -> int:
    return patch[0] + len(patch[1])


def apply_patches(path: Path, patches: Sequence[tuple[int, bytes]]) -> None:
    """Write ``patches`` into the file at ``path`` in place (it grows when one ends past it).

    No fsync: the file is scratch that later readers in this process see through the page
    cache; forcing a freshly downloaded slide to disk here cost seconds per gigabyte.
    """
    with path.open("r+b") as fh:
        for offset, data in patches:
            fh.seek(offset)
            fh.write(data)

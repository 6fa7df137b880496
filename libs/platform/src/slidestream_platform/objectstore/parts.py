"""Multipart sizing under the S3 limits (AWS S3 user guide, "Amazon S3 multipart upload limits").

The limits that matter:

* a part is 5 MiB to 5 GiB, except the last one, which may be smaller;
* an upload has at most 10 000 parts;
* an object is at most 5 TiB.

With the default 64 MiB part, a stream of unknown length can reach 625 GiB; a known length
larger than ``part size x 10 000`` gets a bigger part (rounded up to whole MiB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from slidestream_platform.errors import PoisonError

MIB_BYTES: Final = 1024 * 1024
S3_MIN_PART_SIZE_BYTES: Final = 5 * MIB_BYTES
S3_MAX_PART_SIZE_BYTES: Final = 5 * 1024 * MIB_BYTES
S3_MAX_PART_COUNT: Final = 10_000
S3_MAX_OBJECT_SIZE_BYTES: Final = 5 * 1024 * 1024 * MIB_BYTES
#: Our default: large enough to keep request overhead small on multi-GB slides, small enough
#: that a few parts in flight fit comfortably in a worker's memory.
DEFAULT_PART_SIZE_BYTES: Final = 64 * MIB_BYTES


class ObjectTooLargeError(PoisonError):
    """The object exceeds what one S3 upload can hold."""

    reason = "object-too-large"


def check_part_size(part_size_bytes: int) -> int:
    """Return ``part_size_bytes`` if S3 accepts it as a (non-final) part size."""
    if not S3_MIN_PART_SIZE_BYTES <= part_size_bytes <= S3_MAX_PART_SIZE_BYTES:
        msg = (
            f"part size {part_size_bytes} B is outside S3's "
            f"[{S3_MIN_PART_SIZE_BYTES}, {S3_MAX_PART_SIZE_BYTES}] B"
        )
        raise ValueError(msg)
    return part_size_bytes


def part_size_for(length_bytes: int | None, configured_part_size_bytes: int) -> int:
    """The part size to upload an object of ``length_bytes`` (``None``: unknown) with.

    The configured size is used unless the object would need more than 10 000 parts; then the
    smallest whole-MiB part size that fits is chosen.
    """
    check_part_size(configured_part_size_bytes)
    if length_bytes is None:
        return configured_part_size_bytes
    if length_bytes < 0:
        msg = f"length must be >= 0 or None, got {length_bytes}"
        raise ValueError(msg)
    if length_bytes > S3_MAX_OBJECT_SIZE_BYTES:
        msg = f"{length_bytes} B exceeds S3's object size limit of {S3_MAX_OBJECT_SIZE_BYTES} B"
        raise ObjectTooLargeError(msg)
    needed_bytes = -(-length_bytes // S3_MAX_PART_COUNT)  # ceiling division
    if needed_bytes <= configured_part_size_bytes:
        return configured_part_size_bytes
    rounded_bytes = -(-needed_bytes // MIB_BYTES) * MIB_BYTES
    return min(rounded_bytes, S3_MAX_PART_SIZE_BYTES)


def is_multipart(length_bytes: int | None, part_size_bytes: int) -> bool:
    """Whether an object of ``length_bytes`` (``None``: unknown) may need several parts."""
    return length_bytes is None or length_bytes > part_size_bytes


def max_unknown_length_bytes(part_size_bytes: int) -> int:
    """The largest stream of unknown length that ``part_size_bytes`` parts can carry."""
    return min(part_size_bytes * S3_MAX_PART_COUNT, S3_MAX_OBJECT_SIZE_BYTES)


#: Part size of a server-side compose. A patched part travels (read back, patched, uploaded),
#: a copied one costs a request inside the server. On the local MinIO, 64 MiB parts (four in
#: flight) composed 1.5 GiB in 5.9-8.8 s against 8-13 s for a CopyObject of it in the same
#: runs; 16 MiB parts were not faster (measured for issue #4, a shared 2-core machine).
DEFAULT_COMPOSE_PART_SIZE_BYTES: Final = 64 * MIB_BYTES


@dataclass(frozen=True, slots=True)
class ComposePart:
    """One part of a composed object: bytes ``[start, end)`` of the result."""

    number: int
    start: int
    end: int
    copied: bool
    """True: copied inside the server from the same range of the source (no patch touches it);
    False: read back, patched and uploaded."""


def check_patches(patches: Sequence[tuple[int, bytes]]) -> None:
    """Patches must be non-empty, sorted and disjoint ``(offset >= 0, bytes)`` runs."""
    previous_end = 0
    for offset, data in patches:
        if offset < previous_end or not data:
            msg = "patches must be non-empty, sorted, disjoint (offset, bytes) runs"
            raise ValueError(msg)
        previous_end = offset + len(data)


def plan_compose(
    source_size_bytes: int,
    patches: Sequence[tuple[int, bytes]],
    part_size_bytes: int = DEFAULT_COMPOSE_PART_SIZE_BYTES,
) -> list[ComposePart]:
    """Cut the result of ``source + patches`` into S3 parts on a fixed grid.

    Every part but the last is ``part_size`` long (so S3's 5 MiB minimum holds), the size grows
    when the result would need more than 10 000 parts (:func:`part_size_for`), and a part is
    copied only when no patch touches it and it lies inside the source.
    """
    check_patches(patches)
    result_size = max([source_size_bytes, *(offset + len(data) for offset, data in patches)])
    if result_size == 0:
        msg = "an empty object cannot be composed"
        raise ValueError(msg)
    size = part_size_for(result_size, part_size_bytes)
    touched: set[int] = set()
    for offset, data in patches:
        touched.update(range(offset // size, (offset + len(data) - 1) // size + 1))
    parts: list[ComposePart] = []
    for index, start in enumerate(range(0, result_size, size)):
        end = min(start + size, result_size)
        copied = index not in touched and end <= source_size_bytes
        parts.append(ComposePart(index + 1, start, end, copied))
    return parts


def patched_range(
    source_bytes: bytes, start: int, end: int, patches: Sequence[tuple[int, bytes]]
) -> bytes:
    """Bytes ``[start, end)`` of ``source + patches``, given the source's bytes from ``start``
    (shorter than the range where the result grew past the source)."""
    out = bytearray(end - start)
    out[: len(source_bytes)] = source_bytes[: end - start]
    for offset, data in patches:
        lo, hi = max(offset, start), min(offset + len(data), end)
        if lo < hi:
            out[lo - start : hi - start] = data[lo - offset : hi - offset]
    return bytes(out)

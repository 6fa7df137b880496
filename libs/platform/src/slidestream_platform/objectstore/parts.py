"""Multipart sizing under the S3 limits (AWS S3 user guide, "Amazon S3 multipart upload limits").

The limits that matter:

* a part is 5 MiB to 5 GiB, except the last one, which may be smaller;
* an upload has at most 10 000 parts;
* an object is at most 5 TiB.

With the default 64 MiB part, a stream of unknown length can reach 625 GiB; a known length
larger than ``part size x 10 000`` gets a bigger part (rounded up to whole MiB).
"""

from __future__ import annotations

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

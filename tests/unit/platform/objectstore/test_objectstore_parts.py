"""Multipart sizing under S3's limits."""

from __future__ import annotations

import pytest

from slidestream_platform.objectstore.parts import (
    DEFAULT_PART_SIZE_BYTES,
    MIB_BYTES,
    S3_MAX_OBJECT_SIZE_BYTES,
    S3_MAX_PART_COUNT,
    S3_MAX_PART_SIZE_BYTES,
    S3_MIN_PART_SIZE_BYTES,
    ObjectTooLargeError,
    is_multipart,
    max_unknown_length_bytes,
    part_size_for,
)

GIB_BYTES = 1024 * MIB_BYTES


@pytest.mark.parametrize("length", [None, 0, 1, DEFAULT_PART_SIZE_BYTES, 3 * GIB_BYTES])
def test_configured_part_size_is_kept_when_it_fits(length: int | None) -> None:
    assert part_size_for(length, DEFAULT_PART_SIZE_BYTES) == DEFAULT_PART_SIZE_BYTES


def test_huge_objects_get_bigger_whole_mib_parts_within_the_part_count() -> None:
    length = 1024 * GIB_BYTES  # 1 TiB needs > 64 MiB parts to stay within 10 000
    part = part_size_for(length, DEFAULT_PART_SIZE_BYTES)
    assert part > DEFAULT_PART_SIZE_BYTES
    assert part % MIB_BYTES == 0
    assert -(-length // part) <= S3_MAX_PART_COUNT


def test_the_largest_object_fits() -> None:
    part = part_size_for(S3_MAX_OBJECT_SIZE_BYTES, S3_MIN_PART_SIZE_BYTES)
    assert part <= S3_MAX_PART_SIZE_BYTES
    assert -(-S3_MAX_OBJECT_SIZE_BYTES // part) <= S3_MAX_PART_COUNT


def test_objects_beyond_five_tib_are_poison() -> None:
    with pytest.raises(ObjectTooLargeError):
        part_size_for(S3_MAX_OBJECT_SIZE_BYTES + 1, DEFAULT_PART_SIZE_BYTES)


@pytest.mark.parametrize("part", [S3_MIN_PART_SIZE_BYTES - 1, S3_MAX_PART_SIZE_BYTES + 1, 0])
def test_part_sizes_outside_s3_limits_are_refused(part: int) -> None:
    with pytest.raises(ValueError, match="part size"):
        part_size_for(None, part)


def test_negative_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        part_size_for(-1, DEFAULT_PART_SIZE_BYTES)


def test_multipart_only_beyond_one_part_or_when_unknown() -> None:
    assert not is_multipart(0, DEFAULT_PART_SIZE_BYTES)
    assert not is_multipart(DEFAULT_PART_SIZE_BYTES, DEFAULT_PART_SIZE_BYTES)
    assert is_multipart(DEFAULT_PART_SIZE_BYTES + 1, DEFAULT_PART_SIZE_BYTES)
    assert is_multipart(None, DEFAULT_PART_SIZE_BYTES)


def test_unknown_length_limit_at_the_default_part_size_is_625_gib() -> None:
    assert max_unknown_length_bytes(DEFAULT_PART_SIZE_BYTES) == 625 * GIB_BYTES

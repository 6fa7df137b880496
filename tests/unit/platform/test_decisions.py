"""Pure parts of slidestream_platform.decisions."""

from __future__ import annotations

from slidestream_platform.decisions import input_digest


def test_input_digest_of_one_file_is_its_sha256_and_of_a_series_is_order_free() -> None:
    assert input_digest(["a" * 64]) == "a" * 64
    assert input_digest(["a" * 64, "b" * 64]) == input_digest(["b" * 64, "a" * 64])
    assert input_digest(["a" * 64, "b" * 64]) != input_digest(["a" * 64, "c" * 64])

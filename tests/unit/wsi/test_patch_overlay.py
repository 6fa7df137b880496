"""PatchOverlay: a file view whose writes become patches, checked against a plain bytearray."""

from __future__ import annotations

import io
import itertools
import random
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pytest

from slidestream_wsi.tiff.patch import PatchedSource, PatchedStream, PatchOverlay, apply_patches


def test_random_writes_read_back_like_a_real_file(tmp_path: Path) -> None:
    rng = random.Random(4)
    for _ in range(30):
        base = rng.randbytes(rng.randint(0, 300))
        model = bytearray(base)
        overlay = PatchOverlay(io.BytesIO(base), len(base))
        for _ in range(rng.randint(1, 25)):
            offset = rng.randint(0, len(model) + 8)
            data = rng.randbytes(rng.randint(1, 30))
            if offset > len(model):
                model.extend(bytes(offset - len(model)))  # a write past the end leaves zeros
            model[offset : offset + len(data)] = data
            overlay.seek(offset)
            assert overlay.write(data) == len(data)
            assert overlay.tell() == offset + len(data)
        assert overlay.size_bytes == len(model)
        assert overlay.seek(0, io.SEEK_END) == len(model)
        overlay.seek(0)
        assert overlay.read() == bytes(model)
        start = rng.randint(0, len(model))
        overlay.seek(start)
        assert overlay.read(17) == bytes(model[start : start + 17])
        # The patches rebuild the view from the base, in place on a file too.
        target = tmp_path / "file.bin"
        target.write_bytes(base)
        patches = overlay.patches()
        assert all(a + len(d) < b for (a, d), (b, _) in itertools.pairwise(patches))
        apply_patches(target, patches)
        assert target.read_bytes() == bytes(model)
        assert overlay.base_size_bytes == len(base)


def test_the_base_is_never_written() -> None:
    base = io.BytesIO(b"abcdef")
    overlay = PatchOverlay(base, 6)
    overlay.seek(2)
    overlay.write(b"XY")
    overlay.seek(0, io.SEEK_END)
    overlay.write(b"!")
    assert base.getvalue() == b"abcdef"
    assert overlay.patches() == ((2, b"XY"), (6, b"!"))
    assert overlay.read_range(0, 100) == b"abXYef!"


def test_negative_seeks_are_refused() -> None:
    overlay = PatchOverlay(io.BytesIO(b"abc"), 3)
    with pytest.raises(ValueError, match="negative"):
        overlay.seek(-1)


def test_patched_chunks_stream_what_apply_patches_writes(tmp_path: Path) -> None:
    rng = random.Random(9)
    for _ in range(40):
        base = rng.randbytes(rng.randint(0, 400))
        overlay = PatchOverlay(io.BytesIO(base), len(base))
        for _ in range(rng.randint(0, 12)):
            overlay.seek(rng.randint(0, len(base) + 40))
            overlay.write(rng.randbytes(rng.randint(1, 50)))
        patches = overlay.patches()
        target = tmp_path / "file.bin"
        target.write_bytes(base)
        apply_patches(target, patches)
        size = rng.randint(1, 64)
        chunks = [base[i : i + size] for i in range(0, len(base), size)]
        assert b"".join(streamed(chunks, len(base), patches)) == target.read_bytes()
        source = PatchedSource(_BytesSource(base), patches, overlay.size_bytes)
        with source.open() as view:
            assert view.read() == target.read_bytes()


def test_patched_chunks_refuse_a_base_of_another_size() -> None:
    with pytest.raises(ValueError, match="shorter"):
        list(streamed([b"abc"], 4, []))
    with pytest.raises(ValueError, match="longer"):
        list(streamed([b"abcde"], 4, []))


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def name(self) -> str:
        return "bytes"

    @property
    def size_bytes(self) -> int:
        return len(self._data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self._data)


def streamed(
    chunks: list[bytes], base_size: int, patches: Sequence[tuple[int, bytes]]
) -> list[bytes]:
    """The output of a :class:`PatchedStream` fed ``chunks``, the appended bytes last."""
    stream = PatchedStream(base_size, patches)
    return [*(stream.apply(chunk) for chunk in chunks), stream.finish()]

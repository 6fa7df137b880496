"""The fast path: the copying path's output, described as patches of the input (a file or any
source), never written by the library."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from slidestream_samples import TIFF_LAYOUTS, TILE_PX
from slidestream_samples.aperio import write_svs
from slidestream_wsi.deid import (
    AssociatedImagePolicy,
    DeidPolicy,
    deidentify,
    deidentify_as_patches,
    supports_in_place,
)
from slidestream_wsi.detect import Container, detect_format
from slidestream_wsi.errors import SlideError, UnsupportedFormatError
from slidestream_wsi.scan import scan_bytes_for_tokens
from slidestream_wsi.tiff.patch import PatchedStream, apply_patches


def _relabelling(policy: DeidPolicy) -> DeidPolicy:
    return DeidPolicy(
        policy.tenant,
        policy.key,
        policy.pseudonym,
        associated_images=AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM,
    )


@pytest.mark.parametrize("relabel", [False, True])
@pytest.mark.parametrize("layout", TIFF_LAYOUTS)
def test_patches_of_a_file_or_a_stored_object_give_the_copying_path_output(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path, layout: str, relabel: bool
) -> None:
    chosen = _relabelling(policy) if relabel else policy
    source: Path = planted[layout].path  # type: ignore[attr-defined]
    original = source.read_bytes()
    copied = deidentify(source, tmp_path / "copied", chosen)
    in_place = tmp_path / "in-place"
    shutil.copyfile(source, in_place)

    patched = deidentify_as_patches(in_place, chosen)
    apply_patches(in_place, patched.patches)

    output = in_place.read_bytes()
    assert output == copied.outputs[0].read_bytes()
    assert patched.result.outputs == ()  # the library wrote nothing
    assert patched.result.output_bytes == len(output)
    assert patched.result.bytes_rewritten == copied.bytes_rewritten
    assert patched.result.audit == copied.audit
    assert patched.source_size_bytes == len(original)
    # Rebuilding the output from the input and the patches gives it back, byte for byte.
    rebuilt = bytearray(original)
    previous_end = -1
    for offset, data in patched.patches:
        assert offset > previous_end  # sorted, disjoint and not touching
        previous_end = offset + len(data)
        rebuilt[offset : offset + len(data)] = data
    assert bytes(rebuilt) == output
    # The byte post-condition was handed over: the caller's scan must find nothing.
    assert scan_bytes_for_tokens(in_place, list(patched.byte_scan_tokens)) == []
    assert patched.byte_scan_tokens  # the planted slides have removed values to look for

    # From a source that is not a file (a stored object), nothing is written: the same
    # patches, an output read through them, and the same bytes streamed chunk by chunk.
    remote = _CountingSource(source.name, original)
    as_patches = deidentify_as_patches(remote, chosen)
    assert as_patches.patches == patched.patches
    assert as_patches.result.outputs == ()
    assert as_patches.result.audit == patched.result.audit
    assert as_patches.byte_scan_tokens == patched.byte_scan_tokens
    with as_patches.output.open() as view:
        assert view.read() == output
    chunks = [original[i : i + 1000] for i in range(0, len(original), 1000)]
    stream = PatchedStream(len(original), as_patches.patches)
    assert b"".join([*(stream.apply(chunk) for chunk in chunks), stream.finish()]) == output


def test_dicom_is_refused_without_touching_the_file(
    planted: dict[str, object], policy: DeidPolicy, tmp_path: Path
) -> None:
    series = planted["dicom"]
    member = next(p for p in series.path.iterdir() if p.suffix == ".dcm")  # type: ignore[attr-defined]
    if detect_format(member).container is not Container.DICOM:
        pytest.fail("the planted DICOM series should hold DICOM instances")
    target = tmp_path / "instance.dcm"
    shutil.copyfile(member, target)
    before = target.read_bytes()
    with pytest.raises(UnsupportedFormatError):
        deidentify_as_patches(target, policy)
    assert target.read_bytes() == before


def test_a_broken_input_is_left_as_it_was(tmp_path: Path, policy: DeidPolicy) -> None:
    target = tmp_path / "broken.tif"
    target.write_bytes(b"II*\x00" + (10_000).to_bytes(4, "little") + bytes(64))
    with pytest.raises(SlideError):
        deidentify_as_patches(target, policy)
    assert target.read_bytes() == b"II*\x00" + (10_000).to_bytes(4, "little") + bytes(64)


def test_supports_in_place_names_the_tiff_formats_only(planted: dict[str, object]) -> None:
    for layout in TIFF_LAYOUTS:
        assert supports_in_place(detect_format(planted[layout].path))  # type: ignore[attr-defined]
    member = next(planted["dicom"].path.glob("*.dcm"))  # type: ignore[attr-defined]
    assert not supports_in_place(detect_format(member))


class _CountingSource:
    """Bytes in memory as a SlideSource, counting what its readers read."""

    def __init__(self, name: str, data: bytes) -> None:
        self._name = name
        self._data = data
        self.bytes_read = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def size_bytes(self) -> int:
        return len(self._data)

    def open(self) -> BinaryIO:
        source = self

        class Reader(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                data = super().read(size)
                source.bytes_read += len(data)
                return data

            def readinto(self, buffer: Any) -> int:
                count = super().readinto(buffer)
                source.bytes_read += count
                return count

        return cast(BinaryIO, Reader(self._data))


def test_as_patches_reads_the_structure_not_the_pixels(policy: DeidPolicy, tmp_path: Path) -> None:
    """A slide of many tiles: de-identifying it reads a small share of its bytes."""
    path = tmp_path / "large.svs"
    write_svs(path, 16 * TILE_PX, 16 * TILE_PX, label_and_macro=True)
    source = _CountingSource(path.name, path.read_bytes())

    patched = deidentify_as_patches(source, policy)

    assert patched.patches
    assert source.bytes_read < 0.25 * source.size_bytes, (source.bytes_read, source.size_bytes)

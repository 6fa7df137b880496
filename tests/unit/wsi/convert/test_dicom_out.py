"""The DICOM frame writer: frames written a row at a time (from bytes or views into a read
buffer) land in Pixel Data items with a Basic Offset Table that points at each one."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pydicom
import pytest

from slidestream_wsi.convert import DicomIdentity, dicom_out
from slidestream_wsi.convert.dicom_out import (
    DicomInstanceWriter,
    build_dataset,
)
from tests.support.dicom import jpeg_volume, slide_description


def _dataset(frames: int) -> pydicom.Dataset:
    size = (16 * frames, 16)
    description = slide_description(DicomIdentity("writer-test"), level0_size=size)
    return build_dataset(description, jpeg_volume("level-0", size, tile_px=16))


# Not decodable JPEG, only distinct payloads of odd and even lengths (items are padded).
FRAMES = [bytes([i]) * (100 + 37 * i) for i in range(7)]


def _items(path: Path) -> tuple[list[int], list[bytes]]:
    """The Basic Offset Table and the frame items of an encapsulated Pixel Data element."""
    data = path.read_bytes()
    at = data.rindex(b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff") + 12
    tag, length = struct.unpack_from("<4sI", data, at)
    assert tag == b"\xfe\xff\x00\xe0"
    table = list(struct.unpack_from(f"<{length // 4}I", data, at + 8))
    at += 8 + length
    first_item = at
    items = []
    while True:
        tag, length = struct.unpack_from("<4sI", data, at)
        if tag == b"\xfe\xff\xdd\xe0":
            break
        items.append((at - first_item, data[at + 8 : at + 8 + length]))
        at += 8 + length
    assert table == [offset for offset, _ in items]
    return table, [item for _, item in items]


def test_rows_of_views_and_single_frames_write_the_same_file(tmp_path: Path) -> None:
    one = DicomInstanceWriter(tmp_path / "one.dcm", _dataset(len(FRAMES)), 10_000)
    for frame in FRAMES:
        one.add_frame(frame)
    one.close()
    buffer = bytearray(b"".join(FRAMES))
    views, at = [], 0
    for frame in FRAMES:
        views.append(memoryview(buffer)[at : at + len(frame)])
        at += len(frame)
    rows = DicomInstanceWriter(tmp_path / "rows.dcm", _dataset(len(FRAMES)), 10_000)
    rows.add_frames(views[:3])
    rows.add_frames(views[3:])
    rows.close()
    assert (tmp_path / "one.dcm").read_bytes() == (tmp_path / "rows.dcm").read_bytes()
    _, items = _items(tmp_path / "rows.dcm")
    assert len(items) == len(FRAMES)
    for item, frame in zip(items, FRAMES, strict=True):
        # PS3.5 §A.4: items have an even length, an odd frame gets one padding byte.
        assert item == frame + b"\x00" * (len(frame) % 2)
    ds = pydicom.dcmread(tmp_path / "rows.dcm", stop_before_pixels=True)
    assert float(ds.LossyImageCompressionRatio) > 0  # the placeholder was patched


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_writev = os.writev

    def short_writev(fd: int, buffers: list[bytes | memoryview]) -> int:
        # POSIX lets writev stop early; write about half of what was asked.
        total = sum(len(b) for b in buffers)
        joined = b"".join(bytes(b) for b in buffers)
        return real_writev(fd, [joined[: max(1, total // 2)]])

    expected = DicomInstanceWriter(tmp_path / "full.dcm", _dataset(len(FRAMES)), 10_000)
    expected.add_frames(FRAMES)
    expected.close()
    monkeypatch.setattr(dicom_out.os, "writev", short_writev)
    short = DicomInstanceWriter(tmp_path / "short.dcm", _dataset(len(FRAMES)), 10_000)
    short.add_frames(FRAMES)
    short.close()
    assert (tmp_path / "short.dcm").read_bytes() == (tmp_path / "full.dcm").read_bytes()


def test_frame_count_is_enforced(tmp_path: Path) -> None:
    writer = DicomInstanceWriter(tmp_path / "x.dcm", _dataset(2), 10_000)
    with pytest.raises(RuntimeError, match="more frames"):
        writer.add_frames(FRAMES[:3])
    writer.add_frames(FRAMES[:1])
    with pytest.raises(RuntimeError, match="fewer frames"):
        writer.close()

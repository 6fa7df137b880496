"""DICOM VL Whole Slide Microscopy Image instances (PS3.3 §A.32.8), one per pyramid level plus a
thumbnail, written frame by frame.

The dataset in front of the pixel data is built module by module (:mod:`~.dicom_modules`) and
written with ``dcmwrite``; the encapsulated Pixel Data (PS3.5 §A.4) is then streamed item by
item, and the offset table is patched in place once every frame's size is known: a Basic Offset
Table when the frames add up to less than 4 GiB, else an Extended Offset Table
(PS3.3 §C.7.6.3.1.8) with an empty BOT. Uncompressed levels use Explicit VR Little Endian native
pixel data.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from collections.abc import Sequence as FrameSequence
from pathlib import Path
from types import TracebackType

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from slidestream_wsi.convert import dicom_modules as modules
from slidestream_wsi.convert.dicom_modules import (
    InstanceGeometry,
    SlideDescription,
    derived_uid,
)

__all__ = [
    "BOT_LIMIT_BYTES",
    "DicomInstanceWriter",
    "InstanceGeometry",
    "SlideDescription",
    "build_dataset",
    "derived_uid",
]

BOT_LIMIT_BYTES = 2**32 - 1
"""A Basic Offset Table holds 32-bit offsets (PS3.5 §A.4): beyond, the Extended one is used."""

_RATIO_ELEMENT_HEAD = b"\x28\x00\x12\x21DS" + struct.pack("<H", 16)
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_HEADER = struct.Struct("<4sI")
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

ModuleBuilder = Callable[[Dataset, SlideDescription, InstanceGeometry], None]
IOD_MODULES: tuple[ModuleBuilder, ...] = (
    modules.patient,
    modules.general_study,
    modules.series,
    modules.frame_of_reference,
    modules.equipment,
    modules.whole_slide_image,
    modules.multi_resolution_pyramid,
    modules.multi_frame,
    modules.multi_frame_dimension,
    modules.specimen,
    modules.acquisition_context,
    modules.optical_path,
    modules.sop_common,
)
"""The modules of the VL Whole Slide Microscopy Image IOD (PS3.3 Table A.32.8-1) we write."""


def build_dataset(slide: SlideDescription, geometry: InstanceGeometry) -> Dataset:
    """The dataset of one instance, File Meta Information included."""
    ds = Dataset()
    ds.file_meta = modules.file_meta(slide, geometry)
    for build in IOD_MODULES:
        build(ds, slide, geometry)
    return ds


class DicomInstanceWriter:
    """Writes one instance: the dataset, then frames a tile row at a time (encapsulated or
    native).

    The dataset is serialised in memory; the frames go to the file unbuffered, with one
    ``writev`` per row from the caller's buffers (item headers in between), so that a copied
    tile is copied once, into the kernel."""

    def __init__(self, path: Path, dataset: Dataset, frames_size_bound: int) -> None:
        self.path = path
        self._frame_count = int(dataset.NumberOfFrames)
        ts = UID(str(dataset.file_meta.TransferSyntaxUID))
        self._encapsulated = ts.is_compressed
        self._frame_bytes = int(dataset.Rows) * int(dataset.Columns) * 3
        self._lengths: list[int] = []
        self._use_eot = self._encapsulated and frames_size_bound > BOT_LIMIT_BYTES
        header = io.BytesIO()
        pydicom.dcmwrite(header, dataset, enforce_file_format=True)
        head = header.getvalue()
        self._ratio_at: int | None = None
        if "LossyImageCompressionRatio" in dataset:
            found = head.find(_RATIO_ELEMENT_HEAD)
            if found < 0:
                raise RuntimeError("compression ratio placeholder not found in the header")
            self._ratio_at = found + len(_RATIO_ELEMENT_HEAD)
        count = self._frame_count
        parts = [head]
        if not self._encapsulated:
            total = count * self._frame_bytes
            self._native_padding = total % 2
            parts.append(b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", total + total % 2))
        else:
            if self._use_eot:
                self._eot_at = len(head) + 12
                table = b"\x00" * (8 * count)
                for tag in (b"\xe0\x7f\x01\x00", b"\xe0\x7f\x02\x00"):
                    parts.append(tag + b"OV\x00\x00" + struct.pack("<I", len(table)) + table)
            parts.append(b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff")
            bot = b"" if self._use_eot else b"\x00" * (4 * count)
            self._bot_at = sum(len(part) for part in parts) + 8
            parts.append(_ITEM + struct.pack("<I", len(bot)) + bot)
        self._file = path.open("w+b", buffering=0)
        self._fd = self._file.fileno()
        _write_all(self._fd, parts)

    def add_frame(self, data: bytes) -> None:
        self.add_frames((data,))

    def add_frames(self, frames: FrameSequence[bytes | memoryview]) -> None:
        """Append frames in order, in one ``writev`` (a tile row at a time keeps the cost per
        frame to building its item header)."""
        if len(self._lengths) + len(frames) > self._frame_count:
            raise RuntimeError("more frames than the instance declares")
        if not self._encapsulated:
            if any(len(data) != self._frame_bytes for data in frames):
                raise RuntimeError("native frame of the wrong size")
            _write_all(self._fd, frames)
            self._lengths.extend(self._frame_bytes for _ in frames)
            return
        parts: list[bytes | memoryview] = []
        for data in frames:
            size = len(data)
            padded = size + size % 2
            parts.append(_ITEM_HEADER.pack(_ITEM, padded))
            parts.append(data)
            if padded != size:
                parts.append(b"\x00")
            self._lengths.append(padded)
        _write_all(self._fd, parts)

    def close(self) -> None:
        if len(self._lengths) != self._frame_count:
            self._file.close()
            raise RuntimeError("fewer frames than the instance declares")
        if self._ratio_at is not None:
            ratio = self._frame_count * self._frame_bytes / max(1, sum(self._lengths))
            os.pwrite(self._fd, f"{ratio:.2f}".ljust(16).encode("ascii"), self._ratio_at)
        if not self._encapsulated:
            if self._native_padding:
                _write_all(self._fd, [b"\x00"])
            self._file.close()
            return
        _write_all(self._fd, [_SEQUENCE_DELIMITER])
        # PS3.5 §A.4: each offset is that of the frame's item tag from the first item after
        # the table; an item is its 8-byte header plus the (even) frame length.
        lengths = np.asarray(self._lengths, dtype=np.uint64)
        ends = np.cumsum(lengths + _ITEM_HEADER.size, dtype=np.uint64)
        offsets = np.concatenate([np.zeros(1, np.uint64), ends[:-1]])
        if self._use_eot:
            os.pwrite(self._fd, offsets.astype("<u8").tobytes(), self._eot_at)
            os.pwrite(
                self._fd, lengths.astype("<u8").tobytes(), self._eot_at + 8 * len(offsets) + 12
            )
        else:
            if int(ends[-1]) > BOT_LIMIT_BYTES:
                self._file.close()
                raise RuntimeError("frames exceed the Basic Offset Table's 32-bit offsets")
            os.pwrite(self._fd, offsets.astype("<u4").tobytes(), self._bot_at)
        self._file.close()

    def abort(self) -> None:
        self._file.close()

    def __enter__(self) -> DicomInstanceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


def _write_all(fd: int, parts: FrameSequence[bytes | memoryview]) -> None:
    """``writev`` the parts at the file's position, at most IOV_MAX at a time; a short write
    (allowed by POSIX) is finished part by part."""
    for start in range(0, len(parts), _IOV_MAX):
        batch = parts[start : start + _IOV_MAX]
        written = os.writev(fd, batch)
        expected = sum(len(part) for part in batch)
        if written == expected:
            continue
        for part in batch:
            size = len(part)
            if written >= size:
                written -= size
                continue
            rest = memoryview(part)[written:]
            written = 0
            while len(rest):
                rest = rest[os.write(fd, rest) :]

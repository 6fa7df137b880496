"""A bounded walk over the IFD structure of a TIFF or BigTIFF file (TIFF 6.0 §2, BigTIFF).

This is not a decoder: it reads the header, every image file directory (IFD) of the top-level
chain and of SubIFDs (tag 330, TIFF Technical Note 1), and records where each entry and value
lies in the file. De-identification needs those byte positions to patch a file in place, and
validation needs the walk to be bounded before any library follows a pointer: IFD loops, absurd
entry counts and values past the end of the file are refused here with typed errors.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import tifffile

from slidestream_wsi.errors import (
    CorruptSlideError,
    SlideBombError,
    TruncatedSlideError,
    UnsupportedFormatError,
)
from slidestream_wsi.limits import DEFAULT_LIMITS, SlideLimits
from slidestream_wsi.source import SourceLike

# TIFF 6.0 §2 field types and BigTIFF's 64-bit additions: type code -> bytes per value.
FIELD_TYPE_SIZE_BYTES: dict[int, int] = {
    1: 1,  # BYTE
    2: 1,  # ASCII
    3: 2,  # SHORT
    4: 4,  # LONG
    5: 8,  # RATIONAL
    6: 1,  # SBYTE
    7: 1,  # UNDEFINED
    8: 2,  # SSHORT
    9: 4,  # SLONG
    10: 8,  # SRATIONAL
    11: 4,  # FLOAT
    12: 8,  # DOUBLE
    13: 4,  # IFD (TIFF Technical Note 1)
    16: 8,  # LONG8 (BigTIFF)
    17: 8,  # SLONG8 (BigTIFF)
    18: 8,  # IFD8 (BigTIFF)
}
_INTEGER_DTYPE_CHAR: dict[int, str] = {
    1: "u1",
    3: "u2",
    4: "u4",
    6: "i1",
    8: "i2",
    9: "i4",
    13: "u4",
    16: "u8",
    17: "i8",
    18: "u8",
}

TAG_NEW_SUBFILE_TYPE = 254
TAG_IMAGE_WIDTH = 256
TAG_IMAGE_LENGTH = 257
TAG_IMAGE_DESCRIPTION = 270
TAG_STRIP_OFFSETS = 273
TAG_ROWS_PER_STRIP = 278
TAG_STRIP_BYTE_COUNTS = 279
TAG_TILE_WIDTH = 322
TAG_TILE_LENGTH = 323
TAG_TILE_OFFSETS = 324
TAG_TILE_BYTE_COUNTS = 325
TAG_SUB_IFDS = 330
TAG_EXIF_IFD = 34665
TAG_GPS_IFD = 34853
TAG_INTEROPERABILITY_IFD = 40965
TAG_NDPI_FILE_FORMAT = 65420

FOUR_GIB_BYTES = 2**32


@dataclass(frozen=True, slots=True)
class IfdEntry:
    """One 12-byte (TIFF) or 20-byte (BigTIFF) directory entry and where its value lies."""

    code: int
    field_type: int
    count: int
    entry_offset: int
    value_offset: int
    value_nbytes: int
    inline: bool


@dataclass(slots=True)
class Ifd:
    """One image file directory."""

    offset: int
    entries: dict[int, IfdEntry]
    next_pointer_offset: int
    next_offset: int
    entry_order: list[int] = field(default_factory=list)
    sub_ifds: list[Ifd] = field(default_factory=list)
    parent: Ifd | None = None


@dataclass(slots=True)
class TiffStructure:
    """The walked structure: byte order, BigTIFF or not, and the IFDs in chain order."""

    byteorder: str
    bigtiff: bool
    file_size_bytes: int
    first_ifd_pointer_offset: int
    ifds: list[Ifd]

    @property
    def entry_nbytes(self) -> int:
        return 20 if self.bigtiff else 12

    @property
    def offset_nbytes(self) -> int:
        return 8 if self.bigtiff else 4

    @property
    def count_nbytes(self) -> int:
        return 8 if self.bigtiff else 2

    def all_ifds(self) -> Iterator[Ifd]:
        """Every IFD, top level first, each followed by its SubIFDs (depth first)."""
        stack = list(reversed(self.ifds))
        while stack:
            ifd = stack.pop()
            yield ifd
            stack.extend(reversed(ifd.sub_ifds))

    def ifd_block_end(self, ifd: Ifd) -> int:
        """File offset just past the IFD's next pointer."""
        return ifd.next_pointer_offset + self.offset_nbytes

    def read_value(self, fh: BinaryIO, entry: IfdEntry, limits: SlideLimits) -> bytes:
        """The raw bytes of an entry's value, bounded by ``limits.max_tag_value_bytes``."""
        if entry.value_nbytes > limits.max_tag_value_bytes:
            raise SlideBombError(f"tag {entry.code} declares a value over the size limit")
        fh.seek(entry.value_offset)
        data = fh.read(entry.value_nbytes)
        if len(data) != entry.value_nbytes:
            raise TruncatedSlideError(f"tag {entry.code} value runs past the end of the file")
        return data

    def read_integers(
        self, fh: BinaryIO, entry: IfdEntry, limits: SlideLimits
    ) -> npt.NDArray[np.int64]:
        """An integer-typed entry as int64 values (offsets, byte counts, dimensions)."""
        char = _INTEGER_DTYPE_CHAR.get(entry.field_type)
        if char is None:
            raise CorruptSlideError(f"tag {entry.code} is not of an integer type")
        prefix = "<" if self.byteorder == "<" else ">"
        raw = self.read_value(fh, entry, limits)
        return np.frombuffer(raw, dtype=np.dtype(prefix + char)).astype(np.int64)

    def read_int(self, fh: BinaryIO, ifd: Ifd, code: int, limits: SlideLimits) -> int | None:
        """The first value of an integer tag, or ``None`` when the tag is absent."""
        entry = ifd.entries.get(code)
        if entry is None or entry.count < 1:
            return None
        return int(self.read_integers(fh, entry, limits)[0])

    def pack_offset(self, value: int) -> bytes:
        fmt = "Q" if self.bigtiff else "I"
        if not self.bigtiff and value >= FOUR_GIB_BYTES:
            raise UnsupportedFormatError("offset beyond 4 GiB in a classic TIFF")
        return struct.pack(self.byteorder + fmt, value)

    def pack_count(self, value: int) -> bytes:
        return struct.pack(self.byteorder + ("Q" if self.bigtiff else "H"), value)


def read_tiff_header(head: bytes) -> tuple[str, bool] | None:
    """Byte order and BigTIFF flag from the first 8 bytes, or ``None`` when not a TIFF.

    TIFF 6.0 §2: ``II`` or ``MM``, then 42; BigTIFF: 43, offset size 8, then a zero word.
    """
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return None
    byteorder = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(byteorder + "H", head[2:4])
    if version == 42:
        return byteorder, False
    if version == 43:
        offset_size, reserved = struct.unpack(byteorder + "HH", head[4:8])
        if offset_size == 8 and reserved == 0:
            return byteorder, True
    return None


def walk_tiff(fh: BinaryIO, limits: SlideLimits = DEFAULT_LIMITS) -> TiffStructure:
    """Walk all IFDs of a TIFF; raise typed errors for loops, bombs and truncation."""
    fh.seek(0, 2)
    file_size = fh.tell()
    fh.seek(0)
    head = fh.read(16)
    parsed = read_tiff_header(head)
    if parsed is None:
        raise UnsupportedFormatError("not a TIFF header")
    byteorder, bigtiff = parsed
    if bigtiff:
        if len(head) < 16:
            raise TruncatedSlideError("BigTIFF header is truncated")
        (first,) = struct.unpack(byteorder + "Q", head[8:16])
        first_pointer_offset = 8
    else:
        (first,) = struct.unpack(byteorder + "I", head[4:8])
        first_pointer_offset = 4
    structure = TiffStructure(byteorder, bigtiff, file_size, first_pointer_offset, [])
    seen: set[int] = set()
    structure.ifds = _walk_chain(fh, structure, first, seen, limits, parent=None)
    if not structure.ifds:
        raise CorruptSlideError("TIFF has no image file directory")
    if (
        not bigtiff
        and file_size >= FOUR_GIB_BYTES
        and TAG_NDPI_FILE_FORMAT in structure.ifds[0].entries
    ):
        # NDPI over 4 GiB stores 64-bit offsets in a private way that this walker does not follow.
        raise UnsupportedFormatError("NDPI files over 4 GiB are not supported")
    return structure


def _walk_chain(
    fh: BinaryIO,
    structure: TiffStructure,
    first_offset: int,
    seen: set[int],
    limits: SlideLimits,
    parent: Ifd | None,
) -> list[Ifd]:
    chain: list[Ifd] = []
    offset = first_offset
    while offset != 0:
        if offset in seen:
            raise CorruptSlideError("IFD loop: an IFD offset repeats in the chain")
        seen.add(offset)
        if len(seen) > limits.max_ifd_count:
            raise SlideBombError("more IFDs than MAX_IFD_COUNT")
        ifd = read_ifd(fh, structure, offset, limits)
        ifd.parent = parent
        chain.append(ifd)
        sub = ifd.entries.get(TAG_SUB_IFDS)
        if sub is not None:
            sub_offsets = [int(o) for o in structure.read_integers(fh, sub, limits).tolist()]
            for sub_offset in sub_offsets:
                if sub_offset in seen and sub_offset in {i.offset for i in ifd.sub_ifds}:
                    continue  # already reached through the previous SubIFD's next pointer
                ifd.sub_ifds.extend(_walk_chain(fh, structure, sub_offset, seen, limits, ifd))
        offset = ifd.next_offset
    return chain


def read_ifd(fh: BinaryIO, structure: TiffStructure, offset: int, limits: SlideLimits) -> Ifd:
    bo = structure.byteorder
    if offset < 8:
        raise CorruptSlideError("IFD offset points into the header")
    count_nbytes = structure.count_nbytes
    fh.seek(offset)
    raw_count = fh.read(count_nbytes)
    if len(raw_count) != count_nbytes:
        raise TruncatedSlideError("IFD offset points past the end of the file")
    (count,) = struct.unpack(bo + ("Q" if structure.bigtiff else "H"), raw_count)
    if count == 0:
        raise CorruptSlideError("IFD with no entries")
    if count > limits.max_ifd_entry_count:
        raise SlideBombError("IFD declares more entries than MAX_IFD_ENTRY_COUNT")
    entry_nbytes = structure.entry_nbytes
    offset_nbytes = structure.offset_nbytes
    block = fh.read(count * entry_nbytes + offset_nbytes)
    if len(block) != count * entry_nbytes + offset_nbytes:
        raise TruncatedSlideError("IFD runs past the end of the file")
    entries: dict[int, IfdEntry] = {}
    order: list[int] = []
    for index in range(count):
        start = index * entry_nbytes
        entry_offset = offset + count_nbytes + start
        if structure.bigtiff:
            code, field_type, n = struct.unpack(bo + "HHQ", block[start : start + 12])
            value_field = block[start + 12 : start + 20]
            pointer_fmt = "Q"
        else:
            code, field_type, n = struct.unpack(bo + "HHI", block[start : start + 8])
            value_field = block[start + 8 : start + 12]
            pointer_fmt = "I"
        size = FIELD_TYPE_SIZE_BYTES.get(field_type)
        if size is None:
            raise CorruptSlideError(f"tag {code} has an unknown field type {field_type}")
        nbytes = size * n
        if nbytes > limits.max_tag_value_bytes:
            raise SlideBombError(f"tag {code} declares a value over MAX_TAG_VALUE_BYTES")
        inline = nbytes <= offset_nbytes
        if inline:
            value_offset = entry_offset + (entry_nbytes - offset_nbytes)
        else:
            (value_offset,) = struct.unpack(bo + pointer_fmt, value_field)
            if value_offset + nbytes > structure.file_size_bytes:
                raise TruncatedSlideError(f"tag {code} value runs past the end of the file")
        if code in entries:
            raise CorruptSlideError(f"tag {code} appears twice in one IFD")
        entries[code] = IfdEntry(code, field_type, n, entry_offset, value_offset, nbytes, inline)
        order.append(code)
    (next_offset,) = struct.unpack(
        bo + ("Q" if structure.bigtiff else "I"), block[count * entry_nbytes :]
    )
    next_pointer_offset = offset + count_nbytes + count * entry_nbytes
    return Ifd(offset, entries, next_pointer_offset, next_offset, order)


def decode_text_value(raw: bytes, field_type: int) -> str | None:
    """A tag value as text: ASCII, or BYTE/UNDEFINED that is printable UTF-8 or UTF-16LE."""
    if field_type == 2:
        return " ".join(part.decode("latin-1") for part in raw.split(b"\x00") if part)
    if field_type in (1, 7) and raw:
        decoders: list[Callable[[bytes], str]] = [
            lambda b: b.decode("utf-16-le"),
            lambda b: b.decode("utf-8"),
        ]
        if raw[1:2] != b"\x00":
            decoders.reverse()
        for decode in decoders:
            try:
                text = decode(raw).strip("\x00")
            except UnicodeDecodeError:
                continue
            if text and sum(c.isprintable() or c.isspace() for c in text) >= 0.9 * len(text):
                return text
    return None


@contextmanager
def open_tifffile(source: SourceLike) -> Iterator[tifffile.TiffFile]:
    """Open with tifffile reading the IFD chain as classic TIFF, whatever the file's name.

    A :class:`~slidestream_wsi.source.SlideSource` is read through a reader of its own,
    closed with the TiffFile.

    tifffile switches to 64-bit NDPI next-IFD offsets when a file is *named* ``.ndpi``; the
    bounded walker (and libtiff, OpenSlide) read classic 32-bit offsets, and NDPI files over
    4 GiB (the only ones that need more) are refused by the walker. Reading every file the same
    way keeps what we validate and what we patch identical, and independent of file names.
    """
    if isinstance(source, Path):
        with tifffile.TiffFile(source, is_ndpi=False) as tif:
            yield tif
        return
    with source.open() as fh, tifffile.TiffFile(fh, name=source.name, is_ndpi=False) as tif:
        yield tif

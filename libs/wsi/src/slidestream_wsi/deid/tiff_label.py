"""The generated pseudonym label of a de-identified TIFF, appended as a directory of its own.

It takes the removed label's place in the directory chain (:mod:`slidestream_wsi.deid.tiff`
relinks it); on NDPI it takes the macro's place, since NDPI has no label image.
"""

from __future__ import annotations

import struct
import zlib

from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.label import pseudonym_label, pseudonym_label_jpeg
from slidestream_wsi.detect import SlideFormat
from slidestream_wsi.tiff.patch import TiffPatcher
from slidestream_wsi.tiff.structure import FIELD_TYPE_SIZE_BYTES, TiffStructure

NDPI_MACRO_MAGNIFICATION = -1.0
"""NDPI has no label image: its macro (Magnification -1) shows the label, so the generated
label takes the macro's place and magnification (OpenSlide's hamamatsu driver)."""

# TIFF 6.0 section 2 field types.
_ASCII = 2
_SHORT = 3
_LONG = 4
_FLOAT = 11
_LONG8 = 16  # BigTIFF
_TIFF_DEFLATE = 8  # Adobe Deflate (TIFF Technical Note, zlib)
_RGB = 2
_YCBCR = 6
_TIFF_JPEG = 7  # TIFF Technical Note 2 JPEG

#: One tag of a directory being written: (code, field type, count, value bytes).
TagValue = tuple[int, int, int, bytes]


def ifd_entry_bytes(
    patcher: TiffPatcher,
    structure: TiffStructure,
    code: int,
    field_type: int,
    count: int,
    raw: bytes,
) -> bytes:
    """One IFD entry; a value longer than the offset field is appended to the file."""
    s = structure
    if len(raw) <= s.offset_nbytes:
        field = raw + bytes(s.offset_nbytes - len(raw))
    else:
        field = s.pack_offset(patcher.append(raw))
    count_fmt = "Q" if s.bigtiff else "I"
    return struct.pack(s.byteorder + "HH" + count_fmt, code, field_type, count) + field


def append_label_ifd(
    patcher: TiffPatcher,
    structure: TiffStructure,
    fmt: SlideFormat,
    pseudonym: str,
    links: dict[int, tuple[int, int]],
    extra: dict[int, tuple[int, bytes]],
    audit: AuditRecorder,
) -> int:
    """Append the label image and its directory; return the directory's offset.

    ``extra`` tags (directory-0 metadata when the label becomes the first directory) replace
    the label's own; ``links`` learns where the new directory's next pointer is.
    """
    image = pseudonym_label(pseudonym)
    height, width = int(image.shape[0]), int(image.shape[1])
    jpeg = fmt is SlideFormat.HAMAMATSU_NDPI
    # OpenSlide reads an NDPI macro only as one JPEG strip; elsewhere lossless Deflate.
    strip = pseudonym_label_jpeg(image) if jpeg else zlib.compress(image.tobytes(), 9)
    strip_offset = patcher.append(strip)
    values = _label_tags(structure, fmt, width, height, strip_offset, len(strip))
    values = [v for v in values if v[0] not in extra]
    for code, (field_type, raw) in extra.items():
        values.append((code, field_type, len(raw) // FIELD_TYPE_SIZE_BYTES[field_type], raw))
    entries = b"".join(
        ifd_entry_bytes(patcher, structure, code, ftype, count, raw)
        for code, ftype, count, raw in sorted(values)
    )
    s = structure
    block = s.pack_count(len(values)) + entries + s.pack_offset(0)
    ifd_offset = patcher.append(block)
    links[ifd_offset] = (ifd_offset + len(block) - s.offset_nbytes, 0)
    audit.removed_field("label_replaced_with_pseudonym")
    return ifd_offset


def _label_tags(
    structure: TiffStructure,
    fmt: SlideFormat,
    width: int,
    height: int,
    strip_offset: int,
    strip_nbytes: int,
) -> list[TagValue]:
    """The label directory's tags: one RGB strip, described the way ``fmt``'s readers expect."""
    jpeg = fmt is SlideFormat.HAMAMATSU_NDPI
    description = {
        SlideFormat.APERIO_SVS: f"Aperio Image Library\r\nlabel {width}x{height}",
        SlideFormat.PHILIPS_TIFF: "Label",
        SlideFormat.VENTANA_BIF: "Label Image",
    }.get(fmt, "label")
    s = structure
    bo = s.byteorder
    offset_type = _LONG8 if s.bigtiff else _LONG
    offset_fmt = "Q" if s.bigtiff else "I"

    values: list[TagValue] = [
        (254, _LONG, 1, struct.pack(bo + "I", 1)),  # NewSubfileType: reduced image
        (256, _LONG, 1, struct.pack(bo + "I", width)),
        (257, _LONG, 1, struct.pack(bo + "I", height)),
        (258, _SHORT, 3, struct.pack(bo + "HHH", 8, 8, 8)),
        (259, _SHORT, 1, struct.pack(bo + "H", _TIFF_JPEG if jpeg else _TIFF_DEFLATE)),
        (262, _SHORT, 1, struct.pack(bo + "H", _YCBCR if jpeg else _RGB)),
        (270, _ASCII, len(description) + 1, description.encode("ascii") + b"\x00"),
        (273, offset_type, 1, struct.pack(bo + offset_fmt, strip_offset)),
        (277, _SHORT, 1, struct.pack(bo + "H", 3)),
        (278, _LONG, 1, struct.pack(bo + "I", height)),
        (279, offset_type, 1, struct.pack(bo + offset_fmt, strip_nbytes)),
        (284, _SHORT, 1, struct.pack(bo + "H", 1)),
    ]
    if jpeg:
        values += [
            (530, _SHORT, 2, struct.pack(bo + "HH", 2, 2)),  # YCbCrSubSampling 4:2:0
            (271, _ASCII, 10, b"Hamamatsu\x00"),  # Make: NDPI readers require it
            (65420, _LONG, 1, struct.pack(bo + "I", 1)),  # FileFormat
            (65421, _FLOAT, 1, struct.pack(bo + "f", NDPI_MACRO_MAGNIFICATION)),
        ]
    return values

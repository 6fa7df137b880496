"""JPEG and JPEG 2000 codestream surgery for the lossless path (ITU T.81 Annex B, ISO 15444-1
Annex A): tiles are copied, never decoded, so what DICOM needs is fixed in the markers.

* TIFF stores JPEG tiles abbreviated (T.81 §B.4): the shared quantisation and Huffman tables
  live in the JPEGTables tag. A DICOM frame must be a complete interchange stream, so the tables
  are spliced in: ``tables`` without its EOI, then the tile without its SOI.
* Aperio writes RGB components into JPEG without a JFIF or Adobe marker; decoders would
  otherwise assume YCbCr (T.872 §6.5.3), so an Adobe APP14 segment with transform 0 is inserted
  and the DICOM Photometric Interpretation is RGB.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from slidestream_wsi.errors import CorruptSlideError

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
_APP0 = 0xFFE0
_APP14 = 0xFFEE
_SOS = 0xFFDA
# T.81 Table B.1: SOF markers; SOF0 is baseline (8-bit, Huffman), what DICOM's JPEG Baseline
# transfer syntax (PS3.5 §8.2.1, 1.2.840.10008.1.2.4.50) carries.
_SOF_BASELINE = 0xFFC0
_SOF_MARKERS = frozenset(
    [*range(0xFFC0, 0xFFC4), *range(0xFFC5, 0xFFC8), *range(0xFFC9, 0xFFCC), *range(0xFFCD, 0xFFD0)]
)
_STANDALONE = frozenset({0xFFD8, 0xFFD9, 0xFF01, *range(0xFFD0, 0xFFD8)})
# Adobe APP14 (Adobe TN 5116): "Adobe", version 100, flags0, flags1, transform 0 = no colour
# transform, i.e. the components are RGB.
ADOBE_RGB_SEGMENT = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"

# ISO 15444-1 §A.2: SOC, SIZ and COD markers of a JPEG 2000 codestream.
J2K_SOC = b"\xff\x4f"
_J2K_COD = 0xFF52
_J2K_SOT = 0xFF90
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


@dataclass(frozen=True, slots=True)
class JpegFrame:
    """What the SOF and APPn segments of one JPEG say."""

    baseline: bool
    precision: int
    height: int
    width: int
    components: int
    sampling: tuple[tuple[int, int], ...]
    """(horizontal, vertical) sampling factor of each component."""
    jfif: bool
    adobe_transform: int | None

    @property
    def chroma_subsampled(self) -> bool:
        return len({factors for factors in self.sampling}) > 1


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, payload offset, payload length) of each marker segment before the scan."""
    found: list[tuple[int, int, int]] = []
    position = 0
    size = len(data)
    while position + 4 <= size:
        if data[position] != 0xFF:
            raise CorruptSlideError("JPEG marker expected")
        marker = (data[position] << 8) | data[position + 1]
        if marker == 0xFFFF:  # T.81 §B.1.1.2: fill bytes before a marker
            position += 1
            continue
        if marker in _STANDALONE:
            found.append((marker, position + 2, 0))
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if length < 2 or position + 2 + length > size:
            raise CorruptSlideError("JPEG segment runs past the end of the tile")
        found.append((marker, position + 4, length - 2))
        if marker == _SOS:
            break
        position += 2 + length
    return found


def parse_jpeg_frame(data: bytes) -> JpegFrame:
    """Parse the frame header of a complete (or table-merged) JPEG."""
    if not data.startswith(SOI):
        raise CorruptSlideError("JPEG tile without SOI")
    jfif = False
    adobe: int | None = None
    for marker, offset, length in _segments(data):
        if marker == _APP0 and data[offset : offset + 5] == b"JFIF\x00":
            jfif = True
        elif marker == _APP14 and data[offset : offset + 5] == b"Adobe" and length >= 12:
            adobe = data[offset + 11]
        elif marker in _SOF_MARKERS:
            precision, height, width, count = struct.unpack_from(">BHHB", data, offset)
            sampling = tuple(
                (data[offset + 7 + 3 * i] >> 4, data[offset + 7 + 3 * i] & 0x0F)
                for i in range(count)
            )
            return JpegFrame(
                baseline=marker == _SOF_BASELINE and precision == 8,
                precision=precision,
                height=height,
                width=width,
                components=count,
                sampling=sampling,
                jfif=jfif,
                adobe_transform=adobe,
            )
    raise CorruptSlideError("JPEG tile without a frame header")


def jpeg_header_length(data: bytes) -> int:
    """Bytes from SOI to the end of the first SOS segment: everything before the entropy-coded
    data (T.81 §B.2.1), hence everything :func:`parse_jpeg_frame` looks at."""
    for marker, offset, length in _segments(data):
        if marker == _SOS:
            return offset + length
    raise CorruptSlideError("JPEG tile without a scan header")


def merge_tables(tables: bytes | None, tile: bytes) -> bytes:
    """The tile as a complete JPEG: ``tables`` minus EOI, then the tile minus SOI (T.81 §B.4)."""
    if not tables:
        return tile
    if not tables.startswith(SOI) or not tile.startswith(SOI):
        raise CorruptSlideError("JPEG tables or tile without SOI")
    body = tables[:-2] if tables.endswith(EOI) else tables
    return body + tile[2:]


def with_adobe_rgb_marker(jpeg: bytes) -> bytes:
    """The JPEG with an Adobe APP14 transform-0 segment right after SOI (components are RGB)."""
    return jpeg[:2] + ADOBE_RGB_SEGMENT + jpeg[2:]


def is_jp2_file(data: bytes) -> bool:
    """Whether the bytes are a JP2 file (boxes) rather than a bare codestream."""
    return data.startswith(_JP2_SIGNATURE)


@dataclass(frozen=True, slots=True)
class J2kCoding:
    width: int
    height: int
    components: int
    multiple_component_transform: bool
    reversible: bool
    """5-3 reversible wavelet (YBR_RCT when transformed), else 9-7 irreversible (YBR_ICT)."""


def parse_j2k_codestream(data: bytes) -> J2kCoding:
    """Parse SIZ and COD of a JPEG 2000 codestream (ISO 15444-1 §A.5.1, §A.6.1)."""
    if not data.startswith(J2K_SOC):
        raise CorruptSlideError("JPEG 2000 tile without SOC")
    position = 2
    size_info: tuple[int, int, int] | None = None
    while position + 4 <= len(data):
        (marker, length) = struct.unpack_from(">HH", data, position)
        payload = position + 4
        if marker == 0xFF51:  # SIZ
            _rsiz, xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">HIIII", data, payload)
            (count,) = struct.unpack_from(">H", data, payload + 34)
            size_info = (xsiz - xosiz, ysiz - yosiz, count)
        elif marker == _J2K_COD:
            # Scod(1) SGcod: progression(1) layers(2) MCT(1); SPcod: levels(1) cb w(1) cb h(1)
            # style(1) transform(1)
            mct = data[payload + 4]
            transform = data[payload + 9]
            if size_info is None:
                raise CorruptSlideError("JPEG 2000 COD before SIZ")
            width, height, count = size_info
            return J2kCoding(width, height, count, mct == 1, transform == 1)
        elif marker == _J2K_SOT:
            break
        position = payload + length - 2
    raise CorruptSlideError("JPEG 2000 codestream without SIZ/COD")

"""What the uploaded bytes are, from their first bytes — never from the file name.

Signatures: TIFF 6.0 §2 (``II*\\0`` little-endian, ``MM\\0*`` big-endian), BigTIFF (version 43),
DICOM PS3.10 §7.1 (128-byte preamble then ``DICM``), ZIP APPNOTE §4.3.7 (local file header
``PK\\3\\4``; multi-file formats such as MRXS and DICOM series arrive zipped).
"""

from __future__ import annotations

from slidestream_contracts.events import SlideFormat

SNIFF_BYTES = 132
"""Enough for every signature above (the DICOM magic ends at byte 132)."""

_TIFF_LE = b"II*\x00"
_TIFF_BE = b"MM\x00*"
_BIGTIFF_LE = b"II+\x00"
_BIGTIFF_BE = b"MM\x00+"
_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"
_ZIP_LOCAL_HEADER = b"PK\x03\x04"


def sniff_container(head: bytes) -> SlideFormat | None:
    """The container format of a file starting with ``head``, or ``None`` if it is none we take."""
    if head.startswith((_TIFF_LE, _TIFF_BE)):
        return SlideFormat.TIFF
    if head.startswith((_BIGTIFF_LE, _BIGTIFF_BE)):
        return SlideFormat.BIGTIFF
    if head[_DICOM_MAGIC_OFFSET : _DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC)] == _DICOM_MAGIC:
        return SlideFormat.DICOM
    if head.startswith(_ZIP_LOCAL_HEADER):
        return SlideFormat.ZIP
    return None

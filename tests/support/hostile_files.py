"""Files an attacker (or a broken scanner) sends instead of a slide: TIFFs that declare far more
than they hold, zip bombs, archives whose members try to leave the extraction folder, files whose
name lies about their content, slides cut short.

Each maker writes one file and returns its path; none needs anything but the bytes it is given
or a real slide to spoil. The unit tests of :mod:`slidestream_wsi` and the fault suite's hostile
scenarios share them.
"""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from PIL import Image

TIFF_SHORT = 3
TIFF_LONG = 4
COMPRESSION_NONE = 1
COMPRESSION_DEFLATE = 8
_IFD_AT = 8
"""The first IFD right after the 8-byte header."""
_ITEM_TAG = b"\xfe\xff\x00\xe0"
"""A DICOM item tag (FFFE,E000) in little endian (PS3.5 §7.5)."""


def tiny_tiff(
    path: Path,
    width: int,
    height: int,
    *,
    tile_px: int = 256,
    compression: int = COMPRESSION_NONE,
    payload: bytes = b"",
    tile_offset: int | None = None,
    tile_bytes: int | None = None,
) -> Path:
    """A TIFF of one IFD and one tile that declares whatever it is told (a TIFF bomb when the
    sizes are huge; a lying file when ``tile_offset`` points past its end). ``payload`` is the
    tile's stored bytes, right after the IFD unless ``tile_offset`` says otherwise."""
    entries = [
        (256, TIFF_LONG, width),
        (257, TIFF_LONG, height),
        (258, TIFF_SHORT, 8),
        (259, TIFF_SHORT, compression),
        (262, TIFF_SHORT, 1),
        (322, TIFF_LONG if tile_px > 0xFFFF else TIFF_SHORT, tile_px),
        (323, TIFF_LONG if tile_px > 0xFFFF else TIFF_SHORT, tile_px),
        (324, TIFF_LONG, 0),
        (325, TIFF_LONG, 0),
    ]
    ifd_bytes = 2 + 12 * len(entries) + 4
    data_at = _IFD_AT + ifd_bytes
    offset = data_at if tile_offset is None else tile_offset
    count = len(payload) if tile_bytes is None else tile_bytes
    ifd = struct.pack("<H", len(entries))
    for code, ftype, value in entries:
        value = {324: offset, 325: count}.get(code, value)
        packed = (
            struct.pack("<H", value) + b"\0\0" if ftype == TIFF_SHORT else struct.pack("<I", value)
        )
        ifd += struct.pack("<HH", code, ftype) + struct.pack("<I", 1) + packed
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", _IFD_AT) + ifd + payload)
    return path


def tiff_bomb(path: Path) -> Path:
    """A 130-byte TIFF declaring a 4 000 000 x 4 000 000 pixel image (16 terapixels)."""
    return tiny_tiff(path, 4_000_000, 4_000_000, payload=b"\0" * 16)


def tile_bomb(path: Path, inflated_bytes: int = 64 * 1024 * 1024) -> Path:
    """A TIFF whose single 100 000 x 100 000 px tile is a deflate stream of zeros: some tens of
    KiB that would decode to 10 GB (``inflated_bytes`` of it are really compressed)."""
    payload = zlib.compress(bytes(inflated_bytes), 9)
    return tiny_tiff(
        path, 100_000, 100_000, tile_px=100_000, compression=COMPRESSION_DEFLATE, payload=payload
    )


def tiff_offsets_beyond_eof(path: Path) -> Path:
    """A 256 x 256 px TIFF whose one tile lies a gigabyte past the end of the file."""
    return tiny_tiff(path, 256, 256, tile_offset=1 << 30, tile_bytes=65_536, payload=b"\0" * 64)


def truncated_copy(source: Path, path: Path, fraction: float = 0.5) -> Path:
    """``source`` cut after ``fraction`` of its bytes (a transfer that stopped half-way)."""
    whole = source.read_bytes()
    path.write_bytes(whole[: int(len(whole) * fraction)])
    return path


def png_file(path: Path) -> Path:
    """A real PNG (whatever ``path``'s extension claims)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (220, 120, 160)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def pdf_file(path: Path) -> Path:
    """A minimal one-page PDF 1.4 (whatever ``path``'s extension claims)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    body = b"%PDF-1.4\n"
    offsets = []
    for number, value in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + value + b"\nendobj\n"
    xref_at = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    path.write_bytes(body)
    return path


def dicom_wrong_pixel_length(source: Path, path: Path, claimed_bytes: int = 1 << 30) -> Path:
    """A copy of the encapsulated DICOM instance ``source`` whose first frame's item claims
    ``claimed_bytes`` (a gigabyte), far more than the file holds."""
    data = bytearray(source.read_bytes())
    pixel_data = data.rfind(b"\xe0\x7f\x10\x00")
    table = data.find(_ITEM_TAG, pixel_data)
    table_length = struct.unpack_from("<I", data, table + 4)[0]
    first_frame = table + 8 + table_length
    assert data[first_frame : first_frame + 4] == _ITEM_TAG, "not an encapsulated instance"
    struct.pack_into("<I", data, first_frame + 4, claimed_bytes)
    path.write_bytes(bytes(data))
    return path


def zip_of(
    path: Path,
    members: Mapping[str, bytes],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    symlinks: Mapping[str, str] | None = None,
) -> Path:
    """A zip of ``members`` (name → bytes, written as given: ``../x`` stays ``../x``) and of
    symbolic-link members (name → target)."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def duplicate_member_zip(path: Path, name: str, first: bytes, second: bytes) -> Path:
    """A zip holding two members called ``name`` (zipfile warns, and writes both)."""
    with (
        warnings.catch_warnings(),
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        warnings.simplefilter("ignore", UserWarning)
        archive.writestr(name, first)
        archive.writestr(name, second)
    return path


def ratio_bomb_zip(path: Path, inflated_bytes: int = 64 * 1024 * 1024) -> Path:
    """One member of zeros, deflated about 1000:1 (a 64 MiB member in ~64 KiB)."""
    chunk = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("series/instance_1.dcm", "w") as member,
    ):
        for _ in range(inflated_bytes // len(chunk)):
            member.write(chunk)
    return path


def many_members_zip(path: Path, count: int) -> Path:
    """``count`` one-byte stored members (a directory of ~60 bytes per member)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for index in range(count):
            archive.writestr(zipfile.ZipInfo(f"s/{index:06d}.dcm"), b"x")
    return path

"""De-identification of TIFF-based slides by patching a copy in place.

The input is copied once (streamed); then, in the copy: label and macro/overview IFDs are
unlinked from the IFD chain and their bytes (IFD, values, pixel data) are zeroed; every kept IFD
loses the tags that are not on the allowlist (:mod:`slidestream_wsi.deid.tiff_tags`) and gets a
scrubbed ImageDescription written over the old one (or appended when it grew). Tile and strip
data of the kept levels are never written (the patcher refuses to), so they stay byte-identical.
"""

from __future__ import annotations

import logging
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from slidestream_wsi.deid.aperio import scrub_aperio_description
from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.label import pseudonym_label
from slidestream_wsi.deid.ome import scrub_ome_xml
from slidestream_wsi.deid.philips import scrub_philips_xml
from slidestream_wsi.deid.policy import AssociatedImagePolicy, DeidPolicy
from slidestream_wsi.deid.tiff_tags import (
    JPEG_INTERCHANGE_FORMAT,
    JPEG_INTERCHANGE_FORMAT_LENGTH,
    PRIVATE_IFD_TAGS,
    TAG_IMAGE_DESCRIPTION,
    TAG_SOFTWARE,
    kept_tags,
    tag_name,
)
from slidestream_wsi.detect import SlideFormat
from slidestream_wsi.errors import DeidentificationError, UnsupportedFormatError
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.tiff.layout import ClassifiedIfd, PageRole, classify_ifds
from slidestream_wsi.tiff.patch import ProtectedRanges, TiffPatcher
from slidestream_wsi.tiff.structure import (
    TAG_STRIP_BYTE_COUNTS,
    TAG_STRIP_OFFSETS,
    TAG_SUB_IFDS,
    TAG_TILE_BYTE_COUNTS,
    TAG_TILE_OFFSETS,
    Ifd,
    TiffStructure,
    decode_text_value,
    open_tifffile,
    read_ifd,
    walk_tiff,
)

TIFF_DEID_FORMATS = frozenset(
    {
        SlideFormat.APERIO_SVS,
        SlideFormat.GENERIC_TIFF,
        SlideFormat.OME_TIFF,
        SlideFormat.HAMAMATSU_NDPI,
        SlideFormat.PHILIPS_TIFF,
    }
)
# Formats whose label can be replaced by a generated one that their readers recognise.
LABEL_REPLACEMENT_FORMATS = frozenset(
    {SlideFormat.APERIO_SVS, SlideFormat.GENERIC_TIFF, SlideFormat.PHILIPS_TIFF}
)
PHILIPS_SOFTWARE = "Philips DP v1.0"
"""Software value kept on Philips files: readers detect the format by its prefix."""

COPY_CHUNK_BYTES = 8 * 1024 * 1024
_ASCII = 2
_SHORT = 3
_LONG = 4
_LONG8 = 16
_TIFF_DEFLATE = 8  # Adobe Deflate (TIFF Technical Note, zlib)
_RGB = 2


@dataclass(frozen=True, slots=True)
class TiffDeidOutcome:
    bytes_rewritten: int
    label_replaced: bool


def copy_stream(source: Path, destination: Path) -> None:
    """Copy a file in fixed-size chunks (never the whole file in memory)."""
    with source.open("rb") as src, destination.open("wb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)


def deidentify_tiff(
    source: Path,
    destination: Path,
    fmt: SlideFormat,
    policy: DeidPolicy,
    audit: AuditRecorder,
    limits: SlideLimits,
) -> TiffDeidOutcome:
    if fmt not in TIFF_DEID_FORMATS:
        raise UnsupportedFormatError(f"de-identification of {fmt} is not supported")
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    copy_stream(source, destination)
    with open_tifffile(source) as tif, destination.open("r+b") as fh:
        structure = walk_tiff(fh, limits)
        classified = classify_ifds(fh, structure, fmt, limits, tif)
        editor = _TiffDeidentifier(fh, structure, fmt, policy, audit, limits, classified)
        return editor.run()


class _TiffDeidentifier:
    def __init__(
        self,
        fh: BinaryIO,
        structure: TiffStructure,
        fmt: SlideFormat,
        policy: DeidPolicy,
        audit: AuditRecorder,
        limits: SlideLimits,
        classified: list[ClassifiedIfd],
    ) -> None:
        self.fh = fh
        self.s = structure
        self.fmt = fmt
        self.policy = policy
        self.audit = audit
        self.limits = limits
        self.classified = classified
        self.kept = [c for c in classified if c.role.kept]
        self.removed = [c for c in classified if not c.role.kept]
        self.allowed = kept_tags(fmt)

    # -- planning -----------------------------------------------------------------------------

    def _text(self, ifd: Ifd, code: int) -> str | None:
        entry = ifd.entries.get(code)
        if entry is None:
            return None
        raw = self.s.read_value(self.fh, entry, self.limits)
        return decode_text_value(raw, entry.field_type)

    def _image_ranges(self, ifd: Ifd) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        for offsets_code, counts_code in (
            (TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS),
            (TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS),
            (JPEG_INTERCHANGE_FORMAT, JPEG_INTERCHANGE_FORMAT_LENGTH),
        ):
            offsets_entry = ifd.entries.get(offsets_code)
            counts_entry = ifd.entries.get(counts_code)
            if offsets_entry is None or counts_entry is None:
                continue
            offsets = self.s.read_integers(self.fh, offsets_entry, self.limits)
            counts = self.s.read_integers(self.fh, counts_entry, self.limits)
            ranges.extend(
                (int(o), int(o + c)) for o, c in zip(offsets, counts, strict=False) if c > 0
            )
        return ranges

    def _block_range(self, ifd: Ifd) -> tuple[int, int]:
        return ifd.offset, self.s.ifd_block_end(ifd)

    def _plan_ifd(self, item: ClassifiedIfd) -> tuple[set[int], dict[int, bytes]]:
        ifd = item.ifd
        remove: set[int] = set()
        replace: dict[int, bytes] = {}
        is_first = item.top_level_index == 0 and item.sub_index is None
        for code in ifd.entry_order:
            if code in self.allowed:
                continue
            if code == TAG_IMAGE_DESCRIPTION:
                scrubbed = self._scrub_description(ifd, is_first)
                if scrubbed is None:
                    remove.add(code)
                    self.audit.removed_field("tiff.ImageDescription", self._text(ifd, code))
                else:
                    replace[code] = scrubbed.encode("utf-8") + b"\x00"
                continue
            if code == TAG_SOFTWARE and self.fmt is SlideFormat.PHILIPS_TIFF:
                current = self._text(ifd, code) or ""
                if current != PHILIPS_SOFTWARE:
                    self.audit.removed_field("tiff.Software", current)
                    replace[code] = PHILIPS_SOFTWARE.encode("ascii") + b"\x00"
                continue
            remove.add(code)
            if code not in PRIVATE_IFD_TAGS:
                self.audit.removed_field(f"tiff.{tag_name(code)}", self._text(ifd, code))
            else:
                self.audit.removed_field(f"tiff.{tag_name(code)}")
        if TAG_SUB_IFDS in ifd.entries and not ifd.sub_ifds:
            remove.add(TAG_SUB_IFDS)
        return remove, replace

    def _scrub_description(self, ifd: Ifd, is_first: bool) -> str | None:
        text = self._text(ifd, TAG_IMAGE_DESCRIPTION) or ""
        if self.fmt is SlideFormat.APERIO_SVS:
            return scrub_aperio_description(text, self.audit)
        if self.fmt is SlideFormat.OME_TIFF and is_first:
            kept_top = [c for c in self.kept if c.sub_index is None]
            renumber = {c.top_level_index: new for new, c in enumerate(kept_top)}
            kept_images = 1
            return scrub_ome_xml(text, kept_images, renumber, self.audit)
        if self.fmt is SlideFormat.PHILIPS_TIFF and is_first:
            return scrub_philips_xml(text, self.audit)
        return None

    # -- execution ----------------------------------------------------------------------------

    def run(self) -> TiffDeidOutcome:
        for item in self.kept:
            for sub in item.ifd.sub_ifds:
                if not any(c.ifd is sub and c.role.kept for c in self.classified):
                    raise DeidentificationError("a kept level has a SubIFD that is not a level")
        plans = {id(c.ifd): self._plan_ifd(c) for c in self.kept}
        protected: list[tuple[int, int]] = []
        for item in self.kept:
            remove, replace = plans[id(item.ifd)]
            protected.append(self._block_range(item.ifd))
            protected.extend(self._image_ranges(item.ifd))
            for code, entry in item.ifd.entries.items():
                if not entry.inline and code not in remove and code not in replace:
                    protected.append((entry.value_offset, entry.value_offset + entry.value_nbytes))
        patcher = TiffPatcher(self.fh, self.s, ProtectedRanges(protected), self.limits)

        label_slot: int | None = None
        for item in self.removed:
            self._wipe_removed_ifd(patcher, item)
            if item.role is PageRole.LABEL and item.sub_index is None and label_slot is None:
                label_slot = item.top_level_index

        for item in self.kept:
            remove, replace = plans[id(item.ifd)]
            for code in sorted(remove):
                entry = item.ifd.entries[code]
                if code in PRIVATE_IFD_TAGS:
                    self._wipe_private_ifd(patcher, item.ifd, code, depth=0)
                if not entry.inline:
                    patcher.wipe(entry.value_offset, entry.value_offset + entry.value_nbytes)
            patcher.remove_entries(item.ifd, remove)
            for code, value in replace.items():
                patcher.set_value(item.ifd, code, value, field_type=_ASCII)

        replaced = self._relink(patcher, label_slot)
        self.fh.flush()
        return TiffDeidOutcome(patcher.bytes_written, replaced)

    def _wipe_removed_ifd(self, patcher: TiffPatcher, item: ClassifiedIfd) -> None:
        ifd = item.ifd
        self.audit.removed_image(str(item.role))
        for code, entry in ifd.entries.items():
            if entry.field_type == _ASCII or code in (TAG_IMAGE_DESCRIPTION, 700, 33432):
                self.audit.removed_value(self._text(ifd, code) or "")
        for start, end in self._image_ranges(ifd):
            patcher.wipe_image_data(start, end)
        for code, entry in ifd.entries.items():
            if code in PRIVATE_IFD_TAGS:
                self._wipe_private_ifd(patcher, ifd, code, depth=0)
            if not entry.inline:
                patcher.wipe(entry.value_offset, entry.value_offset + entry.value_nbytes)
        patcher.wipe(*self._block_range(ifd))

    def _wipe_private_ifd(self, patcher: TiffPatcher, parent: Ifd, code: int, depth: int) -> None:
        """Zero an EXIF/GPS/Interoperability IFD (and the private IFDs it points to)."""
        if depth > 2:
            return
        offset = self.s.read_int(self.fh, parent, code, self.limits)
        if not offset:
            return
        private = read_ifd(self.fh, self.s, offset, self.limits)
        for sub_code, entry in private.entries.items():
            if entry.field_type == _ASCII:
                self.audit.removed_value(self._text(private, sub_code) or "")
            if sub_code in PRIVATE_IFD_TAGS:
                self._wipe_private_ifd(patcher, private, sub_code, depth + 1)
            if not entry.inline:
                patcher.wipe(entry.value_offset, entry.value_offset + entry.value_nbytes)
        patcher.wipe(*self._block_range(private))

    def _relink(self, patcher: TiffPatcher, label_slot: int | None) -> bool:
        chain_offsets: list[int] = []
        replaced = False
        want_label = (
            self.policy.associated_images is AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM
            and label_slot is not None
        )
        if want_label and self.fmt not in LABEL_REPLACEMENT_FORMATS:
            self.audit.removed_field("label_replacement_unsupported_for_format")
            want_label = False
        top_kept = [c for c in self.kept if c.sub_index is None]
        for item in top_kept:
            if want_label and label_slot is not None and item.top_level_index > label_slot:
                chain_offsets.append(self._append_label(patcher))
                want_label = False
                replaced = True
            chain_offsets.append(item.ifd.offset)
        if want_label:
            chain_offsets.append(self._append_label(patcher))
            replaced = True
        if chain_offsets[0] != self.s.ifds[0].offset:
            patcher.set_next_pointer(self.s.first_ifd_pointer_offset, chain_offsets[0])
        by_offset = {c.ifd.offset: c.ifd for c in top_kept}
        for position, offset in enumerate(chain_offsets):
            following = chain_offsets[position + 1] if position + 1 < len(chain_offsets) else 0
            if offset in by_offset:
                ifd = by_offset[offset]
                if ifd.next_offset != following:
                    patcher.set_next_pointer(ifd.next_pointer_offset, following)
            else:
                patcher.set_next_pointer(self._label_next_pointer_offset, following)
        return replaced

    def _append_label(self, patcher: TiffPatcher) -> int:
        image = pseudonym_label(self.policy.pseudonym)
        height, width = int(image.shape[0]), int(image.shape[1])
        strip = zlib.compress(image.tobytes(), 9)
        description = {
            SlideFormat.APERIO_SVS: f"Aperio Image Library\r\nlabel {width}x{height}",
            SlideFormat.PHILIPS_TIFF: "Label",
        }.get(self.fmt, "label")
        s = self.s
        bo = s.byteorder
        strip_offset = patcher.append(strip)
        offset_type = _LONG8 if s.bigtiff else _LONG
        offset_fmt = "Q" if s.bigtiff else "I"

        values: list[tuple[int, int, int, bytes]] = [
            (254, _LONG, 1, struct.pack(bo + "I", 1)),  # NewSubfileType: reduced image
            (256, _LONG, 1, struct.pack(bo + "I", width)),
            (257, _LONG, 1, struct.pack(bo + "I", height)),
            (258, _SHORT, 3, struct.pack(bo + "HHH", 8, 8, 8)),
            (259, _SHORT, 1, struct.pack(bo + "H", _TIFF_DEFLATE)),
            (262, _SHORT, 1, struct.pack(bo + "H", _RGB)),
            (270, _ASCII, len(description) + 1, description.encode("ascii") + b"\x00"),
            (273, offset_type, 1, struct.pack(bo + offset_fmt, strip_offset)),
            (277, _SHORT, 1, struct.pack(bo + "H", 3)),
            (278, _LONG, 1, struct.pack(bo + "I", height)),
            (279, offset_type, 1, struct.pack(bo + offset_fmt, len(strip))),
            (284, _SHORT, 1, struct.pack(bo + "H", 1)),
        ]
        entries = b""
        for code, ftype, count, raw in values:
            if len(raw) <= s.offset_nbytes:
                field = raw + bytes(s.offset_nbytes - len(raw))
            else:
                field = s.pack_offset(patcher.append(raw))
            entries += struct.pack(bo + "HH", code, ftype)
            entries += struct.pack(bo + ("Q" if s.bigtiff else "I"), count) + field
        block = s.pack_count(len(values)) + entries + s.pack_offset(0)
        ifd_offset = patcher.append(block)
        self._label_next_pointer_offset = ifd_offset + len(block) - s.offset_nbytes
        self.audit.removed_field("label_replaced_with_pseudonym")
        return ifd_offset

    _label_next_pointer_offset: int = 0

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
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from slidestream_wsi.deid.aperio import scrub_aperio_description
from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.label import add_ome_label_image
from slidestream_wsi.deid.leica import scrub_scn_xml
from slidestream_wsi.deid.ome import scrub_ome_xml
from slidestream_wsi.deid.philips import scrub_philips_xml
from slidestream_wsi.deid.policy import AssociatedImagePolicy, DeidPolicy
from slidestream_wsi.deid.tiff_label import append_label_ifd, ifd_entry_bytes
from slidestream_wsi.deid.tiff_tags import (
    JPEG_INTERCHANGE_FORMAT,
    JPEG_INTERCHANGE_FORMAT_LENGTH,
    PRIVATE_IFD_TAGS,
    TAG_IMAGE_DESCRIPTION,
    TAG_SOFTWARE,
    kept_tags,
    tag_name,
)
from slidestream_wsi.deid.ventana import bif_software, scrub_bif_description, scrub_bif_xmp
from slidestream_wsi.detect import SlideFormat
from slidestream_wsi.errors import DeidentificationError, UnsupportedFormatError
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.tiff.layout import ClassifiedIfd, PageRole, classify_ifds
from slidestream_wsi.tiff.patch import ProtectedRanges, TiffPatcher
from slidestream_wsi.tiff.structure import (
    FIELD_TYPE_SIZE_BYTES,
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
        SlideFormat.LEICA_SCN,
        SlideFormat.VENTANA_BIF,
    }
)
# Formats whose label can be replaced by a generated one that their readers recognise.
LABEL_REPLACEMENT_FORMATS = frozenset(
    {
        SlideFormat.APERIO_SVS,
        SlideFormat.GENERIC_TIFF,
        SlideFormat.PHILIPS_TIFF,
        SlideFormat.VENTANA_BIF,
        SlideFormat.OME_TIFF,
        SlideFormat.HAMAMATSU_NDPI,
    }
)
# Formats whose readers look for their metadata in directory 0 only: when directory 0 is
# removed (a Leica macro, a Ventana label), its scrubbed metadata moves to the new first one.
FIRST_DIRECTORY_METADATA_FORMATS = frozenset({SlideFormat.LEICA_SCN, SlideFormat.VENTANA_BIF})
TAG_XMP = 700
PHILIPS_SOFTWARE = "Philips DP v1.0"
"""Software value kept on Philips files: readers detect the format by its prefix."""

COPY_CHUNK_BYTES = 8 * 1024 * 1024
_BYTE = 1
_ASCII = 2


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
        self.top_kept = [c for c in self.kept if c.sub_index is None]
        if not self.top_kept:
            raise DeidentificationError("no pyramid level is left to keep")
        slot_roles = {PageRole.LABEL}
        if fmt is SlideFormat.HAMAMATSU_NDPI:
            slot_roles.add(PageRole.MACRO)
        self.label_slot = next(
            (
                c.top_level_index
                for c in self.removed
                if c.role in slot_roles and c.sub_index is None
            ),
            None,
        )
        self.want_label = self._wants_label(self.label_slot)
        # Top-level index -> position in the output chain, a generated label included.
        self.label_position = (
            sum(c.top_level_index < self.label_slot for c in self.top_kept)
            if self.want_label and self.label_slot is not None
            else None
        )
        self.renumbering = {
            c.top_level_index: new
            + int(self.label_position is not None and new >= self.label_position)
            for new, c in enumerate(self.top_kept)
        }
        self.first_payload: dict[int, tuple[int, bytes]] = {}
        if fmt in FIRST_DIRECTORY_METADATA_FORMATS:
            self.first_payload = self._first_directory_payload(structure.ifds[0])

    # -- planning -----------------------------------------------------------------------------

    def _text(self, ifd: Ifd, code: int) -> str | None:
        entry = ifd.entries.get(code)
        if entry is None:
            return None
        raw = self.s.read_value(self.fh, entry, self.limits)
        return decode_text_value(raw, entry.field_type)

    def _image_ranges(self, ifd: Ifd) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Starts and ends of the IFD's stored tiles, strips or JPEG interchange stream, as
        arrays (a level 0 has tens of thousands: see :class:`ProtectedRanges`)."""
        starts: list[npt.NDArray[np.int64]] = []
        ends: list[npt.NDArray[np.int64]] = []
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
            n = min(len(offsets), len(counts))
            present = counts[:n] > 0
            starts.append(offsets[:n][present])
            ends.append(offsets[:n][present] + counts[:n][present])
        empty = np.zeros(0, np.int64)
        return np.concatenate(starts or [empty]), np.concatenate(ends or [empty])

    def _block_range(self, ifd: Ifd) -> tuple[int, int]:
        return ifd.offset, self.s.ifd_block_end(ifd)

    def _first_directory_payload(self, first: Ifd) -> dict[int, tuple[int, bytes]]:
        """Scrubbed directory-0 metadata that readers need on the first directory."""
        payload: dict[int, tuple[int, bytes]] = {}
        if self.fmt is SlideFormat.LEICA_SCN:
            text = self._text(first, TAG_IMAGE_DESCRIPTION) or ""
            scrubbed = scrub_scn_xml(text, self.renumbering, self.audit)
            payload[TAG_IMAGE_DESCRIPTION] = (_ASCII, scrubbed.encode("utf-8") + b"\x00")
        elif self.fmt is SlideFormat.VENTANA_BIF:
            xmp = self._text(first, TAG_XMP)
            scrubbed_xmp = scrub_bif_xmp(xmp, self.audit) if xmp else None
            if scrubbed_xmp is None:
                raise DeidentificationError("Ventana BIF directory 0 has no iScan XMP packet")
            payload[TAG_XMP] = (_BYTE, scrubbed_xmp.encode("utf-8"))
            software = bif_software(self._text(first, TAG_SOFTWARE) or "", self.audit)
            payload[TAG_SOFTWARE] = (_ASCII, software.encode("ascii") + b"\x00")
        return payload

    def _plan_ifd(self, item: ClassifiedIfd) -> tuple[set[int], dict[int, tuple[int, bytes]]]:
        ifd = item.ifd
        remove: set[int] = set()
        replace: dict[int, tuple[int, bytes]] = {}
        is_first = item.top_level_index == 0 and item.sub_index is None
        if is_first and self.first_payload:
            for code, value in self.first_payload.items():
                if code in ifd.entries:
                    self.audit.removed_value(self._text(ifd, code) or "")
                    replace[code] = value
        for code in ifd.entry_order:
            if code in self.allowed or code in replace:
                continue
            if code == TAG_XMP and self.fmt is SlideFormat.VENTANA_BIF:
                xmp = self._text(ifd, code) or ""
                scrubbed_xmp = scrub_bif_xmp(xmp, self.audit) if xmp else None
                self.audit.removed_value(xmp)
                if scrubbed_xmp is None:
                    remove.add(code)
                else:
                    replace[code] = (_BYTE, scrubbed_xmp.encode("utf-8"))
                continue
            if code == TAG_IMAGE_DESCRIPTION:
                scrubbed = self._scrub_description(ifd, is_first)
                if scrubbed is None:
                    remove.add(code)
                    self.audit.removed_field("tiff.ImageDescription", self._text(ifd, code))
                else:
                    replace[code] = (_ASCII, scrubbed.encode("utf-8") + b"\x00")
                continue
            if code == TAG_SOFTWARE and self.fmt is SlideFormat.PHILIPS_TIFF:
                current = self._text(ifd, code) or ""
                if current != PHILIPS_SOFTWARE:
                    self.audit.removed_field("tiff.Software", current)
                    replace[code] = (_ASCII, PHILIPS_SOFTWARE.encode("ascii") + b"\x00")
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
            kept_images = 1
            scrubbed = scrub_ome_xml(text, kept_images, self.renumbering, self.audit)
            if self.label_position is not None:
                scrubbed = add_ome_label_image(scrubbed, self.label_position)
            return scrubbed
        if self.fmt is SlideFormat.PHILIPS_TIFF and is_first:
            return scrub_philips_xml(text, self.audit)
        if self.fmt is SlideFormat.VENTANA_BIF:
            return scrub_bif_description(text, self.audit)
        self.audit.removed_value(text)
        return None

    # -- execution ----------------------------------------------------------------------------

    def run(self) -> TiffDeidOutcome:
        for item in self.kept:
            for sub in item.ifd.sub_ifds:
                if not any(c.ifd is sub and c.role.kept for c in self.classified):
                    raise DeidentificationError("a kept level has a SubIFD that is not a level")
        plans = {id(c.ifd): self._plan_ifd(c) for c in self.kept}
        label_first = self.label_position == 0
        # The first kept directory gets directory 0's metadata in a rewritten copy of its IFD
        # (entries cannot grow in place), so its old block is not protected: it is zeroed.
        relocate_first = (
            bool(self.first_payload) and self.top_kept[0].top_level_index != 0 and not label_first
        )
        patcher = TiffPatcher(self.fh, self.s, self._protected(plans, relocate_first), self.limits)

        for item in self.removed:
            self._wipe_removed_ifd(patcher, item)

        for item in self.kept:
            remove, replace = plans[id(item.ifd)]
            for code in sorted(remove):
                entry = item.ifd.entries[code]
                if code in PRIVATE_IFD_TAGS:
                    self._wipe_private_ifd(patcher, item.ifd, code, depth=0)
                if not entry.inline:
                    patcher.wipe(entry.value_offset, entry.value_offset + entry.value_nbytes)
            patcher.remove_entries(item.ifd, remove)
            for code, (field_type, value) in replace.items():
                patcher.set_value(item.ifd, code, value, field_type=field_type)

        replaced = self._relink(
            patcher, self.label_slot if self.want_label else None, relocate_first
        )
        self.fh.flush()
        return TiffDeidOutcome(patcher.bytes_written, replaced)

    def _protected(
        self, plans: dict[int, tuple[set[int], dict[int, tuple[int, bytes]]]], relocate_first: bool
    ) -> ProtectedRanges:
        """Kept image data, kept directories and the kept values: what no wipe may touch."""
        small: list[tuple[int, int]] = []
        images = [self._image_ranges(item.ifd) for item in self.kept]
        for item in self.kept:
            remove, replace = plans[id(item.ifd)]
            if not (relocate_first and item is self.top_kept[0]):
                small.append(self._block_range(item.ifd))
            for code, entry in item.ifd.entries.items():
                if not entry.inline and code not in remove and code not in replace:
                    small.append((entry.value_offset, entry.value_offset + entry.value_nbytes))
        pairs = np.asarray(small, dtype=np.int64).reshape(-1, 2)
        return ProtectedRanges(
            np.concatenate([pairs[:, 0], *(starts for starts, _ in images)]),
            np.concatenate([pairs[:, 1], *(ends for _, ends in images)]),
        )

    def _wipe_removed_ifd(self, patcher: TiffPatcher, item: ClassifiedIfd) -> None:
        ifd = item.ifd
        self.audit.removed_image(str(item.role))
        for code, entry in ifd.entries.items():
            if entry.field_type == _ASCII or code in (TAG_IMAGE_DESCRIPTION, 700, 33432):
                self.audit.removed_value(self._text(ifd, code) or "")
        starts, ends = self._image_ranges(ifd)
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
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

    def _wants_label(self, label_slot: int | None) -> bool:
        want = (
            self.policy.associated_images is AssociatedImagePolicy.REPLACE_WITH_PSEUDONYM
            and label_slot is not None
        )
        if want and self.fmt not in LABEL_REPLACEMENT_FORMATS:
            self.audit.removed_field("label_replacement_unsupported_for_format")
            return False
        return want

    def _relink(self, patcher: TiffPatcher, label_slot: int | None, relocate_first: bool) -> bool:
        """Chain the kept directories (and a generated label in the old label's place)."""
        # directory offset -> (offset of its next pointer, the pointer's current value)
        links: dict[int, tuple[int, int]] = {
            c.ifd.offset: (c.ifd.next_pointer_offset, c.ifd.next_offset) for c in self.top_kept
        }
        chain_offsets: list[int] = []
        replaced = False
        for item in self.top_kept:
            if label_slot is not None and not replaced and item.top_level_index > label_slot:
                extra = self.first_payload if not chain_offsets else {}
                chain_offsets.append(self._append_label(patcher, links, extra))
                replaced = True
            chain_offsets.append(item.ifd.offset)
        if label_slot is not None and not replaced:
            chain_offsets.append(self._append_label(patcher, links, {}))
            replaced = True
        if relocate_first:
            chain_offsets[0] = self._relocate(patcher, self.top_kept[0].ifd, links)
        if chain_offsets[0] != self.s.ifds[0].offset:
            patcher.set_next_pointer(self.s.first_ifd_pointer_offset, chain_offsets[0])
        for position, offset in enumerate(chain_offsets):
            following = chain_offsets[position + 1] if position + 1 < len(chain_offsets) else 0
            pointer_offset, current = links[offset]
            if current != following:
                patcher.set_next_pointer(pointer_offset, following)
        return replaced

    def _relocate(self, patcher: TiffPatcher, ifd: Ifd, links: dict[int, tuple[int, int]]) -> int:
        """Append a copy of ``ifd`` holding the first-directory metadata; zero the old block."""
        s = self.s
        self.fh.seek(ifd.offset + s.count_nbytes)
        raw = self.fh.read(len(ifd.entry_order) * s.entry_nbytes)
        entries = {
            code: raw[i * s.entry_nbytes : (i + 1) * s.entry_nbytes]
            for i, code in enumerate(ifd.entry_order)
        }
        for code, (field_type, value) in self.first_payload.items():
            old = ifd.entries.get(code)
            if old is not None and not old.inline:
                patcher.wipe(old.value_offset, old.value_offset + old.value_nbytes)
            count = len(value) // FIELD_TYPE_SIZE_BYTES[field_type]
            entries[code] = ifd_entry_bytes(patcher, s, code, field_type, count, value)
        block = s.pack_count(len(entries))
        block += b"".join(entries[code] for code in sorted(entries))  # TIFF 6.0 §2: ascending
        block += s.pack_offset(0)
        offset = patcher.append(block)
        patcher.wipe(*self._block_range(ifd))
        links[offset] = (offset + len(block) - s.offset_nbytes, 0)
        return offset

    def _append_label(
        self,
        patcher: TiffPatcher,
        links: dict[int, tuple[int, int]],
        extra: dict[int, tuple[int, bytes]],
    ) -> int:
        return append_label_ifd(
            patcher, self.s, self.fmt, self.policy.pseudonym, links, extra, self.audit
        )

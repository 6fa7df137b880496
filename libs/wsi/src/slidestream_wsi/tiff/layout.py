"""Which IFD of a slide TIFF is a pyramid level and which is an associated image.

Vendors mark associated images differently: Aperio by a ``label``/``macro`` line in the
ImageDescription, Hamamatsu by a negative Magnification tag (-1 macro, -2 map), Philips by a
``Label``/``Macro`` description, OME-TIFF by series (the first series is the slide). Anything that
is not a level of the main pyramid is treated as an associated image, which de-identification
removes: what we cannot place, we do not keep.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

import tifffile
from defusedxml import ElementTree as SafeET

from slidestream_wsi.detect import SlideFormat
from slidestream_wsi.errors import CorruptSlideError
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.tiff.structure import (
    TAG_IMAGE_DESCRIPTION,
    TAG_IMAGE_LENGTH,
    TAG_IMAGE_WIDTH,
    TAG_NEW_SUBFILE_TYPE,
    TAG_TILE_LENGTH,
    TAG_TILE_WIDTH,
    Ifd,
    TiffStructure,
)

TAG_NDPI_MAGNIFICATION = 65421
# NDPI Magnification values of the non-pyramid images (OpenSlide's hamamatsu driver).
NDPI_MACRO_MAGNIFICATION = -1.0
NDPI_MAP_MAGNIFICATION = -2.0
# A reduced-resolution level keeps the aspect ratio of level 0 up to rounding.
_LEVEL_ASPECT_TOLERANCE = 0.02

_APERIO_LABEL = re.compile(r"(?:^|[\n|;])\s*label\b", re.IGNORECASE)
_APERIO_MACRO = re.compile(r"(?:^|[\n|;])\s*macro\b", re.IGNORECASE)


class PageRole(StrEnum):
    LEVEL = "level"
    THUMBNAIL = "thumbnail"
    LABEL = "label"
    MACRO = "macro"
    OVERVIEW = "overview"
    ASSOCIATED = "associated"

    @property
    def kept(self) -> bool:
        """Whether de-identification keeps IFDs of this role (levels and the tissue thumbnail)."""
        return self in (PageRole.LEVEL, PageRole.THUMBNAIL)


@dataclass(slots=True)
class ClassifiedIfd:
    ifd: Ifd
    role: PageRole
    width_px: int
    height_px: int
    tiled: bool
    top_level_index: int
    """Index of the top-level IFD this one is (or hangs under, for SubIFDs)."""
    sub_index: int | None = None
    """Position among the SubIFDs of its top-level IFD, when it is one."""


def read_description(fh: BinaryIO, structure: TiffStructure, ifd: Ifd, limits: SlideLimits) -> str:
    """The ImageDescription (tag 270) as text, or an empty string."""
    entry = ifd.entries.get(TAG_IMAGE_DESCRIPTION)
    if entry is None:
        return ""
    raw = structure.read_value(fh, entry, limits)
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def _ndpi_magnification(
    fh: BinaryIO, structure: TiffStructure, ifd: Ifd, limits: SlideLimits
) -> float | None:
    entry = ifd.entries.get(TAG_NDPI_MAGNIFICATION)
    if entry is None or entry.count < 1:
        return None
    raw = structure.read_value(fh, entry, limits)
    if entry.field_type == 11:  # FLOAT
        return float(struct.unpack(structure.byteorder + "f", raw[:4])[0])
    if entry.field_type == 12:  # DOUBLE
        return float(struct.unpack(structure.byteorder + "d", raw[:8])[0])
    return float(structure.read_integers(fh, entry, limits)[0])


def _dims(fh: BinaryIO, structure: TiffStructure, ifd: Ifd, limits: SlideLimits) -> tuple[int, int]:
    width = structure.read_int(fh, ifd, TAG_IMAGE_WIDTH, limits)
    height = structure.read_int(fh, ifd, TAG_IMAGE_LENGTH, limits)
    if width is None or height is None:
        raise CorruptSlideError("IFD without ImageWidth or ImageLength (TIFF 6.0 baseline)")
    return width, height


def _is_level_shape(width: int, height: int, base_w: int, base_h: int) -> bool:
    if width > base_w or height > base_h or base_h == 0 or height == 0:
        return False
    return abs(width / height - base_w / base_h) <= _LEVEL_ASPECT_TOLERANCE * (base_w / base_h)


def classify_ifds(
    fh: BinaryIO,
    structure: TiffStructure,
    fmt: SlideFormat,
    limits: SlideLimits,
    tif: tifffile.TiffFile | None = None,
) -> list[ClassifiedIfd]:
    """Give every IFD (top level and SubIFDs) a role. ``tif`` is needed for OME-TIFF series."""
    ome_kept_offsets: set[int] | None = None
    ome_roles: dict[int, PageRole] = {}
    if fmt is SlideFormat.OME_TIFF:
        if tif is None:
            raise ValueError("OME-TIFF classification needs the tifffile handle")
        ome_kept_offsets, ome_roles = _ome_series_roles(tif)

    if fmt in (SlideFormat.LEICA_SCN, SlideFormat.VENTANA_BIF):
        return _classify_by_vendor_roles(fh, structure, fmt, limits)
    result: list[ClassifiedIfd] = []
    base_w, base_h = _dims(fh, structure, structure.ifds[0], limits)
    for top_index, ifd in enumerate(structure.ifds):
        width, height = _dims(fh, structure, ifd, limits)
        tiled = TAG_TILE_WIDTH in ifd.entries and TAG_TILE_LENGTH in ifd.entries
        if top_index == 0:
            role = PageRole.LEVEL
        else:
            role = _top_level_role(
                fh, structure, ifd, fmt, limits, top_index, tiled, (width, height), (base_w, base_h)
            )
        if ome_kept_offsets is not None and top_index > 0:
            role = (
                PageRole.LEVEL
                if ifd.offset in ome_kept_offsets
                else ome_roles.get(ifd.offset, PageRole.ASSOCIATED)
            )
        result.append(ClassifiedIfd(ifd, role, width, height, tiled, top_index))
        for sub_index, sub in enumerate(_flatten_subifds(ifd)):
            sub_w, sub_h = _dims(fh, structure, sub, limits)
            sub_tiled = TAG_TILE_WIDTH in sub.entries and TAG_TILE_LENGTH in sub.entries
            # A SubIFD of a kept level is a reduced-resolution level (TIFF TN1, OME-TIFF
            # pyramids); one under a removed image goes with it.
            sub_role = PageRole.LEVEL if role is PageRole.LEVEL else role
            if sub_role is PageRole.LEVEL and not _is_level_shape(sub_w, sub_h, base_w, base_h):
                sub_role = PageRole.ASSOCIATED
            result.append(
                ClassifiedIfd(sub, sub_role, sub_w, sub_h, sub_tiled, top_index, sub_index)
            )
    return result


def _classify_by_vendor_roles(
    fh: BinaryIO, structure: TiffStructure, fmt: SlideFormat, limits: SlideLimits
) -> list[ClassifiedIfd]:
    """Leica SCN and Ventana BIF name every directory's role; directory 0 may be the macro."""
    scn_roles = (
        scn_directory_roles(read_description(fh, structure, structure.ifds[0], limits))
        if fmt is SlideFormat.LEICA_SCN
        else {}
    )
    result: list[ClassifiedIfd] = []
    for top_index, ifd in enumerate(structure.ifds):
        width, height = _dims(fh, structure, ifd, limits)
        tiled = TAG_TILE_WIDTH in ifd.entries and TAG_TILE_LENGTH in ifd.entries
        if fmt is SlideFormat.LEICA_SCN:
            role = scn_roles.get(top_index, PageRole.ASSOCIATED)
        else:
            role = bif_directory_role(read_description(fh, structure, ifd, limits))
        if role is PageRole.LEVEL and not tiled:
            role = PageRole.ASSOCIATED
        result.append(ClassifiedIfd(ifd, role, width, height, tiled, top_index))
        for sub_index, sub in enumerate(_flatten_subifds(ifd)):
            sub_w, sub_h = _dims(fh, structure, sub, limits)
            sub_tiled = TAG_TILE_WIDTH in sub.entries and TAG_TILE_LENGTH in sub.entries
            # Neither format uses SubIFDs; one that turns up is not placed, so not kept.
            result.append(
                ClassifiedIfd(
                    sub, PageRole.ASSOCIATED, sub_w, sub_h, sub_tiled, top_index, sub_index
                )
            )
    if not any(item.role is PageRole.LEVEL for item in result):
        raise CorruptSlideError("no directory is a pyramid level of the main image")
    return result


def scn_directory_roles(description: str) -> dict[int, PageRole]:
    """Directory index -> role from a Leica SCN collection (OpenSlide's leica driver rules).

    The macro image is the ``<image>`` whose ``<view>`` starts at (0, 0) and has the size of
    the ``<collection>``; every ``<dimension ifd=...>`` of any other image is a level.
    """
    try:
        root = SafeET.fromstring(description)
    except Exception as exc:  # defusedxml raises its own and expat's errors
        raise CorruptSlideError("Leica SCN description XML does not parse safely") from exc
    roles: dict[int, PageRole] = {}
    for collection in (c for c in root if _local(c.tag) == "collection"):
        size = (collection.get("sizeX"), collection.get("sizeY"))
        for image in (i for i in collection if _local(i.tag) == "image"):
            view = next((v for v in image if _local(v.tag) == "view"), None)
            is_macro = view is not None and (
                view.get("offsetX") == "0"
                and view.get("offsetY") == "0"
                and (view.get("sizeX"), view.get("sizeY")) == size
            )
            for node in image.iter():
                if _local(node.tag) != "dimension":
                    continue
                try:
                    index = int(node.get("ifd", ""))
                except ValueError as exc:
                    raise CorruptSlideError("Leica SCN dimension without an IFD index") from exc
                roles[index] = PageRole.MACRO if is_macro else PageRole.LEVEL
    return roles


def bif_directory_role(description: str) -> PageRole:
    """Role of a Ventana BIF directory from its ImageDescription (OpenSlide's ventana driver)."""
    text = description.strip()
    if "level=" in text:
        return PageRole.LEVEL
    if text in ("Label Image", "Label_Image"):
        # The whole-slide photograph with the label (OpenSlide calls it "macro").
        return PageRole.LABEL
    if text == "Thumbnail":
        return PageRole.THUMBNAIL
    return PageRole.ASSOCIATED


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _flatten_subifds(ifd: Ifd) -> list[Ifd]:
    out: list[Ifd] = []
    stack = list(reversed(ifd.sub_ifds))
    while stack:
        sub = stack.pop()
        out.append(sub)
        stack.extend(reversed(sub.sub_ifds))
    return out


def _top_level_role(
    fh: BinaryIO,
    structure: TiffStructure,
    ifd: Ifd,
    fmt: SlideFormat,
    limits: SlideLimits,
    top_index: int,
    tiled: bool,
    dims: tuple[int, int],
    base: tuple[int, int],
) -> PageRole:
    description = read_description(fh, structure, ifd, limits)
    if fmt is SlideFormat.HAMAMATSU_NDPI:
        magnification = _ndpi_magnification(fh, structure, ifd, limits)
        if magnification == NDPI_MACRO_MAGNIFICATION and description.strip() == "label":
            # A generated pseudonym label in the macro's place (slidestream_wsi.deid.tiff).
            return PageRole.LABEL
        if magnification == NDPI_MACRO_MAGNIFICATION:
            return PageRole.MACRO
        if magnification == NDPI_MAP_MAGNIFICATION:
            return PageRole.OVERVIEW
        return PageRole.LEVEL if magnification is not None else PageRole.ASSOCIATED
    if fmt is SlideFormat.PHILIPS_TIFF:
        stripped = description.strip().lower()
        if stripped == "label":
            return PageRole.LABEL
        if stripped == "macro":
            return PageRole.MACRO
        return PageRole.LEVEL if tiled else PageRole.ASSOCIATED
    if _APERIO_LABEL.search(description) or "label" in description.strip().lower()[:16]:
        return PageRole.LABEL
    if _APERIO_MACRO.search(description) or "macro" in description.strip().lower()[:16]:
        return PageRole.MACRO
    if fmt is SlideFormat.APERIO_SVS and not tiled and top_index == 1:
        # Aperio's second IFD is a stripped thumbnail of the scanned area (no label on it).
        return PageRole.THUMBNAIL
    if not tiled:
        return PageRole.ASSOCIATED
    new_subfile_type = structure.read_int(fh, ifd, TAG_NEW_SUBFILE_TYPE, limits) or 0
    if fmt is SlideFormat.APERIO_SVS or new_subfile_type & 1 or _is_level_shape(*dims, *base):
        # TIFF 6.0 NewSubfileType bit 0: a reduced-resolution version of another image.
        return PageRole.LEVEL if _is_level_shape(*dims, *base) else PageRole.ASSOCIATED
    return PageRole.ASSOCIATED


def _ome_series_roles(tif: tifffile.TiffFile) -> tuple[set[int], dict[int, PageRole]]:
    """Offsets of the top-level IFDs of OME series 0, and roles of the other series' IFDs."""
    kept: set[int] = set()
    roles: dict[int, PageRole] = {}
    for series_index, series in enumerate(tif.series):
        name = (series.name or "").lower()
        if series_index == 0:
            role = PageRole.LEVEL
        elif "label" in name:
            role = PageRole.LABEL
        elif "macro" in name or "overview" in name:
            role = PageRole.MACRO
        else:
            role = PageRole.ASSOCIATED
        for page in series.pages:
            if page is None:
                continue
            offset = int(page.offset)
            if series_index == 0:
                kept.add(offset)
            else:
                roles.setdefault(offset, role)
    return kept, roles


def tifffile_page_at(tif: tifffile.TiffFile, ifd: Ifd) -> tifffile.TiffPage:
    """A tifffile page object for any IFD (also SubIFDs), read from its offset."""
    tif.filehandle.seek(ifd.offset)
    return tifffile.TiffPage(tif, index=0)

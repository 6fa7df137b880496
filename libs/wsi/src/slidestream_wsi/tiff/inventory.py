"""Every text value of every IFD of a TIFF, for the residual-PHI scan."""

from __future__ import annotations

import logging
from typing import BinaryIO

from slidestream_wsi.deid.tiff_tags import PRIVATE_IFD_TAGS, tag_name
from slidestream_wsi.detect import SlideFormat
from slidestream_wsi.limits import SlideLimits
from slidestream_wsi.scan import MetadataInventory, MetadataString
from slidestream_wsi.source import SourceLike, as_source
from slidestream_wsi.tiff.layout import PageRole, classify_ifds
from slidestream_wsi.tiff.structure import (
    Ifd,
    TiffStructure,
    decode_text_value,
    open_tifffile,
    read_ifd,
    walk_tiff,
)


def tiff_inventory(path: SourceLike, fmt: SlideFormat, limits: SlideLimits) -> MetadataInventory:
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    strings: list[MetadataString] = []
    with as_source(path).open() as fh, open_tifffile(path) as tif:
        structure = walk_tiff(fh, limits)
        classified = classify_ifds(fh, structure, fmt, limits, tif)
        for index, item in enumerate(classified):
            _collect(fh, structure, item.ifd, f"ifd{index}", strings, limits, depth=0)
        associated = tuple(str(item.role) for item in classified if item.role is not PageRole.LEVEL)
    return MetadataInventory(tuple(strings), associated)


def _collect(
    fh: BinaryIO,
    structure: TiffStructure,
    ifd: Ifd,
    prefix: str,
    out: list[MetadataString],
    limits: SlideLimits,
    depth: int,
) -> None:
    for code, entry in ifd.entries.items():
        if code in PRIVATE_IFD_TAGS and depth < 2:
            offset = structure.read_int(fh, ifd, code, limits)
            if offset:
                private = read_ifd(fh, structure, offset, limits)
                _collect(
                    fh, structure, private, f"{prefix}.{tag_name(code)}", out, limits, depth + 1
                )
            continue
        if entry.field_type not in (1, 2, 7):
            continue
        text = decode_text_value(structure.read_value(fh, entry, limits), entry.field_type)
        if text:
            out.append(MetadataString(f"{prefix}.{tag_name(code)}", text))

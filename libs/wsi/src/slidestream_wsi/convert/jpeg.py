"""Moved to :mod:`slidestream_wsi.pyramid.jpeg` (the slide reader parses codestreams too).

Kept so that ``convert/pipeline.py`` and the modules being split out of it import unchanged while
that split is in flight; remove once nothing imports it.
"""

from slidestream_wsi.pyramid.jpeg import (
    J2K_SOC,
    SOI,
    is_jp2_file,
    jpeg_header_length,
    merge_tables,
    parse_j2k_codestream,
    parse_jpeg_frame,
    with_adobe_rgb_marker,
)

__all__ = [
    "J2K_SOC",
    "SOI",
    "is_jp2_file",
    "jpeg_header_length",
    "merge_tables",
    "parse_j2k_codestream",
    "parse_jpeg_frame",
    "with_adobe_rgb_marker",
]

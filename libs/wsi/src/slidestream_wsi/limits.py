"""Caps that bound the work and memory spent on one untrusted slide.

The numbers are sized for real whole-slide images (the largest scans are about 200 000 x 100 000
pixels at 40x, with a few hundred thousand tiles) with head-room, and far below what would exhaust
a worker: a file that declares more is refused as a bomb before anything is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_IMAGE_DIMENSION_PX = 1_000_000
"""Largest width or height of one level, in pixels (TIFF 6.0 allows 2**32 - 1)."""

MAX_DECODED_PIXELS = 200_000 * 200_000
"""Largest width x height of one level, in pixels (never decoded whole: a sanity cap on claims)."""

MAX_TILE_DIMENSION_PX = 16_384
"""Largest width or height of one tile or strip that we decode, in pixels."""

MAX_TILE_DECODED_BYTES = 256 * 1024 * 1024
"""Largest decoded size of one tile or strip, in bytes (16384 x 16384 x 1 sample = 256 MiB)."""

MAX_IFD_COUNT = 4_096
"""Most image file directories (top level and SubIFDs together) in one TIFF."""

MAX_IFD_ENTRY_COUNT = 1_024
"""Most entries in one IFD (baseline + vendor tags are a few dozen)."""

MAX_TILE_COUNT = 4_000_000
"""Most tiles or strips over all levels (a 200 000 x 100 000 level in 256 px tiles is ~305 000)."""

MAX_TAG_VALUE_BYTES = 64 * 1024 * 1024
"""Largest single tag value, in bytes (big Philips XML descriptions are a few MiB)."""

OPEN_TIME_BUDGET_S = 30.0
"""Wall-clock seconds that opening and validating one slide may take."""

MAX_ARCHIVE_MEMBER_COUNT = 100_000
"""Most members in a zip upload (an MRXS data folder holds a few hundred files)."""

MAX_ARCHIVE_DIRECTORY_BYTES = 32 * 1024**2
"""Largest central directory of a zip upload, in bytes. ``zipfile`` reads the whole directory and
builds an object per entry before anyone can count them, trusting the directory's size rather
than its declared entry count; 32 MiB is ~330 bytes per member at ``MAX_ARCHIVE_MEMBER_COUNT``
(a DICOM instance's entry, with its UID path and extra fields, is ~150) and bounds what opening
a lying archive can allocate (at most ~730 000 minimal 46-byte entries)."""

MAX_ARCHIVE_UNCOMPRESSED_BYTES = 64 * 1024**3
"""Largest total uncompressed size of a zip upload, in bytes."""

MAX_ARCHIVE_COMPRESSION_RATIO = 200.0
"""Largest uncompressed / compressed ratio of a zip member or the whole archive (slides are
already compressed; ratios above this are the signature of a zip bomb)."""

MAX_DICOM_HEADER_BYTES = 64 * 1024 * 1024
"""Largest DICOM dataset in front of the pixel data, in bytes."""

MAX_DICOM_FRAME_COUNT = 4_000_000
"""Most frames in one DICOM instance."""


@dataclass(frozen=True, slots=True)
class SlideLimits:
    """The caps in force for one operation; tests and callers may tighten them."""

    max_image_dimension_px: int = MAX_IMAGE_DIMENSION_PX
    max_decoded_pixels: int = MAX_DECODED_PIXELS
    max_tile_dimension_px: int = MAX_TILE_DIMENSION_PX
    max_tile_decoded_bytes: int = MAX_TILE_DECODED_BYTES
    max_ifd_count: int = MAX_IFD_COUNT
    max_ifd_entry_count: int = MAX_IFD_ENTRY_COUNT
    max_tile_count: int = MAX_TILE_COUNT
    max_tag_value_bytes: int = MAX_TAG_VALUE_BYTES
    open_time_budget_s: float = OPEN_TIME_BUDGET_S
    max_archive_member_count: int = MAX_ARCHIVE_MEMBER_COUNT
    max_archive_directory_bytes: int = MAX_ARCHIVE_DIRECTORY_BYTES
    max_archive_uncompressed_bytes: int = MAX_ARCHIVE_UNCOMPRESSED_BYTES
    max_archive_compression_ratio: float = MAX_ARCHIVE_COMPRESSION_RATIO
    max_dicom_header_bytes: int = MAX_DICOM_HEADER_BYTES
    max_dicom_frame_count: int = MAX_DICOM_FRAME_COUNT


DEFAULT_LIMITS = SlideLimits()

"""Typed errors of the slide domain.

Every way a slide can be refused derives from :class:`SlideError`, so a service maps one class to
its poison-message handling. Messages name what was wrong, never a metadata value: a message may
end up in a log or a dead-letter topic, and a value may be patient data. ``reason`` is the short
code that dead-letter records, rejection events and ``failed:<step>`` statuses carry.
"""

from __future__ import annotations


class SlideError(Exception):
    """A slide that cannot be processed, however often it is retried."""

    reason = "invalid-slide"


class UnsupportedFormatError(SlideError):
    """The bytes are not a slide format we recognise, or one we cannot de-identify yet."""

    reason = "unsupported-format"


class UnsafeArchiveError(SlideError):
    """A zip upload with traversal members, links, or a decompression-bomb shape."""

    reason = "unsafe-archive"


class ArchivePathError(UnsafeArchiveError):
    """A zip member named outside the archive: absolute, a drive letter, ``..``, a backslash or
    a NUL ("Zip Slip")."""

    reason = "archive-path-traversal"


class ArchiveLinkError(UnsafeArchiveError):
    """A zip member that is a symbolic link (it could point anywhere once extracted)."""

    reason = "archive-symlink"


class CorruptArchiveError(UnsafeArchiveError):
    """A zip whose central directory cannot be read."""

    reason = "corrupt-archive"


class EmptyArchiveError(UnsupportedFormatError):
    """A zip that holds no files."""

    reason = "empty-archive"


class SlideBombError(SlideError):
    """Declared sizes, counts or work exceed the limits in :mod:`slidestream_wsi.limits`."""

    reason = "slide-bomb"


class ArchiveBombError(SlideBombError):
    """A zip that expands beyond the size or compression-ratio limits."""

    reason = "archive-bomb"


class ArchiveMemberCountError(SlideBombError):
    """A zip with more members than ``MAX_ARCHIVE_MEMBER_COUNT``."""

    reason = "archive-too-many-members"


class ArchiveDirectoryError(SlideBombError):
    """A zip whose central directory is larger than ``MAX_ARCHIVE_DIRECTORY_BYTES`` (whatever
    entry count it declares: the size is what a reader allocates)."""

    reason = "archive-directory-too-large"


class TruncatedSlideError(SlideError):
    """A structure or a tile points past the end of the file."""

    reason = "truncated-slide"


class CorruptSlideError(SlideError):
    """The structure is inconsistent (IFD loop, overlapping data) or a tile does not decode."""

    reason = "corrupt-slide"


class DeidentificationError(SlideError):
    """De-identification could not be completed safely; nothing should be published."""

    reason = "deid-failed"


class PyramidLevelError(SlideError):
    """QC cannot read the pyramid economically: no level small enough to decode whole (only a
    full-resolution level), or a level it asked for is not among the files given."""

    reason = "qc-no-level"


class QcThresholdsError(ValueError):
    """A tenant's QC thresholds are malformed (unknown name, wrong type, warn past fail)."""


class ConformanceError(SlideError):
    """A converted output failed its conformance gate (``dciodvfy`` errors, an independent reader
    that cannot open it, or pixels that differ from the source on a lossless level)."""

    reason = "conformance-failed"


class ConformanceToolMissing(RuntimeError):  # noqa: N818 - the name the services catch
    """A tool of the conformance gate (``dciodvfy``) is not installed: an environment problem, not
    a bad slide, so it is deliberately no :class:`SlideError` and the message is retried."""


class MissingPixelSpacingError(UnsupportedFormatError):
    """The slide declares no pixel spacing, which DICOM WSI requires (Pixel Measures, Type 1),
    and the caller gave no assumed spacing to write instead."""

    reason = "missing-pixel-spacing"

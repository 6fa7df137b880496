"""Typed errors of the slide domain.

Every way a slide can be refused derives from :class:`SlideError`, so a service maps one class to
its poison-message handling. Messages name what was wrong, never a metadata value: a message may
end up in a log or a dead-letter topic, and a value may be patient data.
"""

from __future__ import annotations


class SlideError(Exception):
    """A slide that cannot be processed, however often it is retried."""


class UnsupportedFormatError(SlideError):
    """The bytes are not a slide format we recognise, or one we cannot de-identify yet."""


class UnsafeArchiveError(SlideError):
    """A zip upload with traversal members, links, or a decompression-bomb shape."""


class SlideBombError(SlideError):
    """Declared sizes, counts or work exceed the limits in :mod:`slidestream_wsi.limits`."""


class TruncatedSlideError(SlideError):
    """A structure or a tile points past the end of the file."""


class CorruptSlideError(SlideError):
    """The structure is inconsistent (IFD loop, overlapping data) or a tile does not decode."""


class DeidentificationError(SlideError):
    """De-identification could not be completed safely; nothing should be published."""

"""Where a slide's bytes come from: a local file, or anything that opens a seekable reader.

The TIFF paths of :mod:`slidestream_wsi` (detection, validation, de-identification as patches,
the metadata inventory) only ever seek and read, so they take a :class:`SlideSource` as well as
a :class:`~pathlib.Path`. A service can then de-identify a slide that is still in the object
store, reading the few ranges its structure needs (ranged GETs) instead of downloading the whole
file first; :class:`PatchedSource` is the output of such a run, the input with its patches
over it (:mod:`slidestream_wsi.tiff.patch`), readable the same way without being written
anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


@runtime_checkable
class SlideSource(Protocol):
    """A slide's bytes, opened as often as a reader needs them."""

    @property
    def name(self) -> str:
        """A file name for messages and artefact names (never a path with identity in it)."""
        ...

    @property
    def size_bytes(self) -> int: ...

    def open(self) -> BinaryIO:
        """A new seekable binary reader positioned at 0; the caller closes it."""
        ...


class FileSource:
    """A local file as a :class:`SlideSource`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def open(self) -> BinaryIO:
        return self.path.open("rb")


SourceLike = Path | SlideSource


def as_source(source: SourceLike) -> SlideSource:
    return FileSource(source) if isinstance(source, Path) else source

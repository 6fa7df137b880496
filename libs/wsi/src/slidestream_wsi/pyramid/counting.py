"""Byte counting for every read of a slide: QC and inference report (and are held to) the
fraction of a file they read, so every path that reads bytes goes through a counter."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from slidestream_wsi.errors import TruncatedSlideError


class ByteCounter:
    """Bytes read from one slide's files, by any thread (the converter reads levels from
    several)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = 0

    @property
    def bytes_read(self) -> int:
        return self._bytes

    def add(self, count: int) -> None:
        with self._lock:
            self._bytes += count

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        """``os.pread``, counted: no shared file position, so threads may read one file."""
        data = os.pread(fd, length, offset)
        self.add(len(data))
        return data

    def pread_exact(self, fd: int, length: int, offset: int) -> bytes:
        data = self.pread(fd, length, offset)
        if len(data) != length:
            raise TruncatedSlideError("a tile points past the end of the file")
        return data

    def preadv_exact(self, fd: int, buffer: memoryview, offset: int) -> None:
        """``os.preadv`` into ``buffer`` (a reused run buffer), counted."""
        count = os.preadv(fd, [buffer], offset)
        self.add(count)
        if count != len(buffer):
            raise TruncatedSlideError("a tile points past the end of the file")


class CountingFile(io.RawIOBase):
    """A read-only file whose reads (tifffile's header and directory reads) are counted."""

    def __init__(self, path: Path, counter: ByteCounter) -> None:
        super().__init__()
        self._raw = path.open("rb", buffering=0)
        self._counter = counter
        self.name = str(path)
        """tifffile names the file handle (and finds an OME-TIFF's sibling files) by it."""

    def fileno(self) -> int:
        return self._raw.fileno()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer) or 0
        self._counter.add(count)
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()

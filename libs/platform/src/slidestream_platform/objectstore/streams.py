"""Pure stream helpers for the object store: one-pass hashing and re-joining a read-ahead."""

from __future__ import annotations

import hashlib
from typing import Final, Protocol

#: Read size when a caller asks for "everything" (``read()`` / ``read(-1)``).
_READ_ALL_CHUNK_BYTES: Final = 1024 * 1024
#: Chunk size when hashing a whole file or object locally (``put_file``, ``copy``).
HASH_CHUNK_BYTES: Final = 8 * 1024 * 1024


class Readable(Protocol):
    """The one method the SDK needs from a body: ``read(size) -> bytes``."""

    def read(self, size: int = -1, /) -> bytes: ...


class HashingReader:
    """Pass reads through to ``source`` while hashing and counting the bytes handed out.

    The MinIO SDK reads its input strictly in order from one thread (parallel part uploads get
    bytes already read), so the digest is the SHA-256 of the object as stored.
    """

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._digest = hashlib.sha256()
        self._bytes_read = 0
        self._at_eof = False

    def read(self, size: int | None = -1, /) -> bytes:
        """Read up to ``size`` bytes (all remaining ones when negative)."""
        if size is None or size < 0:
            return self._read_all()
        if size == 0:
            return b""
        data = self._source.read(size)
        if not data:
            self._at_eof = True
            return b""
        # The SDK concatenates parts with ``+=`` and insists on ``bytes``.
        data = bytes(data)
        self._digest.update(data)
        self._bytes_read += len(data)
        return data

    def _read_all(self) -> bytes:
        chunks: list[bytes] = []
        while chunk := self.read(_READ_ALL_CHUNK_BYTES):
            chunks.append(chunk)
        return b"".join(chunks)

    @property
    def bytes_read(self) -> int:
        """How many bytes have been handed out so far."""
        return self._bytes_read

    @property
    def at_eof(self) -> bool:
        """Whether the source has reported end of stream."""
        return self._at_eof

    def hexdigest(self) -> str:
        """Lowercase hex SHA-256 of the bytes handed out so far."""
        return self._digest.hexdigest()


class PrefixedReader:
    """Serve ``prefix`` first, then continue with ``rest``: undoes a read-ahead.

    The prefix is dropped as soon as it has been served, so a part-sized read-ahead does not
    stay in memory for the rest of the upload.
    """

    def __init__(self, prefix: bytes, rest: Readable) -> None:
        self._prefix: bytes | None = prefix
        self._offset = 0
        self._rest = rest

    def read(self, size: int | None = -1, /) -> bytes:
        """Read up to ``size`` bytes (all remaining ones when negative)."""
        if self._prefix is None:
            return self._rest.read(-1 if size is None else size)
        if size is None or size < 0:
            head = self._prefix[self._offset :]
            self._prefix = None
            return head + self._rest.read(-1)
        head = self._prefix[self._offset : self._offset + size]
        self._offset += len(head)
        if self._offset >= len(self._prefix):
            self._prefix = None
        return head


def read_up_to(source: Readable, size_bytes: int) -> bytes:
    """Read until ``size_bytes`` bytes are gathered or the stream ends (short reads are legal)."""
    chunks: list[bytes] = []
    remaining = size_bytes
    while remaining > 0:
        chunk = source.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)

"""Download an object an event refers to, checking it is the object the event meant."""

from __future__ import annotations

import hashlib
from pathlib import Path

from slidestream_contracts.events import ObjectRef
from slidestream_platform.errors import ChecksumMismatchError
from slidestream_platform.objectstore.port import ObjectStore

DOWNLOAD_CHUNK_BYTES = 8 * 1024 * 1024


def download_verified(store: ObjectStore, ref: ObjectRef, target: Path) -> Path:
    """Stream ``ref`` into ``target``, hashing on the way; a size or sha256 different from the
    event's raises :class:`ChecksumMismatchError` (poison: the object was replaced or damaged,
    retrying reads the same bytes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with store.open_stream(ref.bucket, ref.key) as stream, target.open("wb") as out:
        while chunk := stream.read(DOWNLOAD_CHUNK_BYTES):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if size != ref.size_bytes or digest.hexdigest() != ref.sha256:
        raise ChecksumMismatchError(
            f"{ref.key}: {size} bytes with another sha256 than the event's {ref.size_bytes}"
        )
    return target

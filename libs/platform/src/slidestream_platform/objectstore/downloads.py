"""Download an object an event refers to, checking it is the object the event meant."""

from __future__ import annotations

import hashlib
from pathlib import Path

from slidestream_contracts.events import ObjectRef
from slidestream_platform.errors import ChecksumMismatchError, InvalidEventError
from slidestream_platform.objectstore.port import ObjectStore

DOWNLOAD_CHUNK_BYTES = 8 * 1024 * 1024


def download_verified(
    store: ObjectStore, ref: ObjectRef, target: Path, *, expected_bucket: str
) -> Path:
    """Stream ``ref`` into ``target``, hashing on the way.

    A reference outside ``expected_bucket`` (the one bucket the consuming step may read) raises
    :class:`InvalidEventError` (``wrong-bucket``) before anything is read; a size or sha256
    different from the event's raises :class:`ChecksumMismatchError` (poison: the object was
    replaced or damaged, retrying reads the same bytes).
    """
    if ref.bucket != expected_bucket:
        raise InvalidEventError(
            f"the event points outside the {expected_bucket} bucket", reason="wrong-bucket"
        )
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

"""A model run's embedding files, read from the object store and checked against the event's
reference (size and SHA-256) before they are parsed."""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Protocol

import numpy as np
import numpy.typing as npt

from slidestream_contracts.embeddings import (
    EmbeddingsFileError,
    TileEmbeddings,
    read_tile_embeddings,
)
from slidestream_contracts.events import ObjectRef
from slidestream_platform.errors import ChecksumMismatchError, InvalidEventError
from slidestream_platform.objectstore import ObjectStore


class EmbeddingFiles(Protocol):
    async def tiles(self, ref: ObjectRef) -> TileEmbeddings: ...

    async def slide_vector(self, ref: ObjectRef) -> npt.NDArray[np.float32]: ...


class StoredEmbeddingFiles:
    """:class:`EmbeddingFiles` on the platform's object store (S3)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def tiles(self, ref: ObjectRef) -> TileEmbeddings:
        data = await asyncio.to_thread(self._read, ref)
        try:
            return read_tile_embeddings(data)
        except EmbeddingsFileError as error:
            raise InvalidEventError(f"{ref.key}: {error}", reason="bad-embeddings") from error

    async def slide_vector(self, ref: ObjectRef) -> npt.NDArray[np.float32]:
        data = await asyncio.to_thread(self._read, ref)
        try:
            vector = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError) as error:
            raise InvalidEventError(f"{ref.key}: {error}", reason="bad-embeddings") from error
        return np.asarray(vector, dtype=np.float32).reshape(-1)

    def _read(self, ref: ObjectRef) -> bytes:
        with self._store.open_stream(ref.bucket, ref.key) as stream:
            data = stream.read()
        if len(data) != ref.size_bytes or hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ChecksumMismatchError(f"{ref.key}: not the object the event names")
        return data

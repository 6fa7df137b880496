"""The object-store port: what services depend on, never the SDK behind it.

Services receive an :class:`ObjectStore` (constructor injection) and talk about buckets and keys
only. The implementation over the MinIO SDK lives in :mod:`.minio_store`; tests may substitute
any object that satisfies the protocol.

Integrity: every object written through the port carries the SHA-256 of its bytes as user
metadata (``x-amz-meta-sha256``), computed in the same pass that streams the bytes to the
server. S3's ETag is not a content hash for multipart uploads, so it cannot serve for this.
An object without that metadata was written by someone else (tusd, an operator) or by a put
that died between completing a multipart upload and stamping the digest; :attr:`ObjectInfo.sha256`
is ``None`` for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from os import PathLike
from typing import BinaryIO, Final, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from slidestream_contracts import events

#: User-metadata name of the content digest (sent as the ``x-amz-meta-sha256`` header).
SHA256_METADATA_KEY: Final = "sha256"

#: Content type when the caller does not know better (RFC 2046 section 4.5.1).
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"

#: SigV4 presigned URLs are valid for at most seven days (AWS S3 API reference).
MAX_PRESIGN_EXPIRY_S: Final = 7 * 24 * 3600

_SHA256_HEX_PATTERN: Final = r"^[0-9a-f]{64}$"


class StoredObject(BaseModel):
    """An object this port wrote, as the store reports it (events carry
    :class:`slidestream_contracts.events.ObjectRef`: see :meth:`to_event_ref`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    key: str
    sha256: str = Field(pattern=_SHA256_HEX_PATTERN, description="lowercase hex SHA-256")
    size_bytes: int = Field(ge=0)
    etag: str = Field(description="S3 ETag without quotes; not a content hash for multipart")

    def to_event_ref(self) -> events.ObjectRef:
        """The reference events carry (the ETag is storage detail and stays here)."""
        return events.ObjectRef(
            bucket=self.bucket, key=self.key, sha256=self.sha256, size_bytes=self.size_bytes
        )


class ObjectInfo(BaseModel):
    """What :meth:`ObjectStore.stat` knows about an existing object."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    key: str
    size_bytes: int = Field(ge=0)
    etag: str
    #: ``None`` when the object was not written through this port (see the module docstring).
    sha256: str | None = Field(default=None, pattern=_SHA256_HEX_PATTERN)
    content_type: str = DEFAULT_CONTENT_TYPE
    last_modified: datetime | None = None
    #: User metadata without the ``x-amz-meta-`` prefix, names lower-cased; excludes ``sha256``.
    metadata: Mapping[str, str] = Field(default_factory=dict)

    def to_ref(self) -> StoredObject:
        """The :class:`StoredObject` of this object; it must carry a digest."""
        if self.sha256 is None:
            msg = f"s3://{self.bucket}/{self.key} carries no sha256 metadata"
            raise ValueError(msg)
        return StoredObject(
            bucket=self.bucket,
            key=self.key,
            sha256=self.sha256,
            size_bytes=self.size_bytes,
            etag=self.etag,
        )


class ObjectSummary(BaseModel):
    """One entry of a bucket listing (listings carry no user metadata, so no digest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    key: str
    size_bytes: int = Field(ge=0)
    etag: str
    last_modified: datetime | None = None


@runtime_checkable
class ObjectStore(Protocol):
    """Streaming access to S3-compatible object storage.

    Every method raises only :class:`~slidestream_platform.errors.SlidestreamError` subclasses
    for storage faults: ``RetryableError`` (network, 5xx, timeouts), ``AccessError``
    (credentials, permissions), ``PoisonError``/``ObjectNotFoundError`` (this request can never
    succeed). ``ValueError`` signals a programming error in the arguments.
    """

    def put_stream(
        self,
        bucket: str,
        key: str,
        stream: BinaryIO,
        length: int | None = None,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Stream ``stream`` into ``bucket/key``, hashing it on the way.

        ``length=None`` means unknown (read to EOF). Objects larger than one part go up as a
        multipart upload, so memory stays bounded by a few parts whatever the object size.
        """
        ...

    def put_file(
        self,
        bucket: str,
        key: str,
        path: str | PathLike[str],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Upload a local file (a thin wrapper over :meth:`put_stream`)."""
        ...

    def open_stream(
        self,
        bucket: str,
        key: str,
        *,
        offset: int = 0,
        length: int | None = None,
    ) -> AbstractContextManager[BinaryIO]:
        """Open ``bucket/key`` (or the byte range ``[offset, offset+length)``) for reading.

        The body is streamed from the server as it is read; the connection is released when the
        context exits. A missing object raises ``ObjectNotFoundError``.
        """
        ...

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """Describe ``bucket/key``; ``None`` when it does not exist."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete ``bucket/key``; deleting a missing object succeeds (S3 semantics)."""
        ...

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> StoredObject:
        """Copy an object server-side (the bytes do not pass through this process)."""
        ...

    def compose(
        self,
        bucket: str,
        key: str,
        source: ObjectInfo,
        patches: Sequence[tuple[int, bytes]],
        *,
        sha256: str,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> StoredObject:
        """Write ``bucket/key`` as ``source`` with ``patches`` written over it, server-side.

        ``patches`` are sorted, disjoint ``(offset, bytes)`` runs; one that ends past the
        source grows the object. The ranges no patch touches are copied inside the server
        (multipart UploadPartCopy, conditional on ``source.etag``, so a replaced source fails
        the call instead of being mixed in); only the parts holding patches travel.

        ``sha256`` is the digest of the composed bytes, which the caller has (the store never
        reads them); it is stored with the object from its creation, so no stamping copy is
        needed. A failure aborts the upload: nothing becomes visible under ``key``.
        """
        ...

    def presign_get(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        """A URL that lets its bearer GET the object for ``expires_s`` seconds."""
        ...

    def presign_put(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        """A URL that lets its bearer PUT the object for ``expires_s`` seconds."""
        ...

    def ensure_buckets(self, names: Iterable[str]) -> None:
        """Create the buckets that do not exist yet; safe to call at every start."""
        ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectSummary]:
        """Every object under ``prefix`` (recursively, in key order), fetched page by page."""
        ...

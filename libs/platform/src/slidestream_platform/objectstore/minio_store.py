"""The :class:`~.port.ObjectStore` over the MinIO Python SDK (works with any S3 server).

Puts keep the digest in one pass (:mod:`.minio_writes`); compose builds an object from another
one plus patches inside the server (:mod:`.minio_compose`). Reads, copies, listings and presigned
URLs are here.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from os import PathLike
from typing import BinaryIO, Final

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource

from slidestream_platform.errors import ObjectNotFoundError
from slidestream_platform.objectstore.minio_client import make_minio_client
from slidestream_platform.objectstore.minio_compose import MinioComposer
from slidestream_platform.objectstore.minio_writes import MinioWriter
from slidestream_platform.objectstore.parts import DEFAULT_COMPOSE_PART_SIZE_BYTES
from slidestream_platform.objectstore.port import (
    DEFAULT_CONTENT_TYPE,
    MAX_PRESIGN_EXPIRY_S,
    ObjectInfo,
    ObjectSummary,
    StoredObject,
)
from slidestream_platform.objectstore.s3_metadata import (
    headers_for,
    parse_user_metadata,
    strip_etag,
)
from slidestream_platform.objectstore.sdk_errors import (
    MissingObjectError,
    ResponseReader,
    translated,
)
from slidestream_platform.objectstore.settings import ObjectStoreSettings
from slidestream_platform.objectstore.streams import HASH_CHUNK_BYTES, HashingReader

__all__ = ["MinioObjectStore"]

#: Read buffer of streams handed out by ``open_stream``.
_READ_BUFFER_BYTES: Final = 1024 * 1024


def _check_expiry(expires_s: int) -> timedelta:
    if not 1 <= expires_s <= MAX_PRESIGN_EXPIRY_S:
        msg = f"expires_s must be within [1, {MAX_PRESIGN_EXPIRY_S}], got {expires_s}"
        raise ValueError(msg)
    return timedelta(seconds=expires_s)


class MinioObjectStore:
    """:class:`~.port.ObjectStore` implementation over ``minio.Minio``."""

    def __init__(self, settings: ObjectStoreSettings, *, client: Minio | None = None) -> None:
        self._settings = settings
        self._client = client if client is not None else make_minio_client(settings)
        self._writer = MinioWriter(self._client, settings)
        self._composer = MinioComposer(self._client)

    @property
    def settings(self) -> ObjectStoreSettings:
        """The settings this store was built from."""
        return self._settings

    def close(self) -> None:
        """Close pooled connections (the store stays usable; new connections open on demand)."""
        http = getattr(self._client, "_http", None)
        if isinstance(http, urllib3.PoolManager):
            http.clear()

    # -- writes -----------------------------------------------------------------------------

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
        """See :meth:`.port.ObjectStore.put_stream` and :mod:`.minio_writes`."""
        return self._writer.put_stream(
            bucket, key, stream, length, content_type=content_type, metadata=metadata
        )

    def put_file(
        self,
        bucket: str,
        key: str,
        path: str | PathLike[str],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """See :meth:`.port.ObjectStore.put_file` and :meth:`.minio_writes.MinioWriter.put_file`."""
        return self._writer.put_file(
            bucket, key, path, content_type=content_type, metadata=metadata
        )

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> StoredObject:
        """See :meth:`.port.ObjectStore.copy`.

        The copy carries the source's digest. A source without one (written by another tool)
        is hashed by streaming it once, so the copy still gets a digest.
        """
        info = self.stat(src_bucket, src_key)
        if info is None:
            msg = f"copy s3://{src_bucket}/{src_key}: not found"
            raise ObjectNotFoundError(msg)
        sha256 = info.sha256 or self._hash_object(src_bucket, src_key)
        with translated("copy to", dst_bucket, dst_key):
            # REPLACE with the full metadata: the SDK copies objects over 5 GiB part by part,
            # where S3 cannot carry metadata across by itself. The ETag condition ties the
            # digest to the exact version that was read.
            result = self._client.copy_object(
                dst_bucket,
                dst_key,
                CopySource(src_bucket, src_key, match_etag=info.etag),
                metadata=headers_for(info.content_type, info.metadata, sha256),
                metadata_directive=REPLACE,
            )
        return StoredObject(
            bucket=dst_bucket,
            key=dst_key,
            sha256=sha256,
            size_bytes=info.size_bytes,
            etag=strip_etag(result.etag),
        )

    def compose(
        self,
        bucket: str,
        key: str,
        source: ObjectInfo,
        patches: Sequence[tuple[int, bytes]],
        *,
        sha256: str,
        content_type: str = DEFAULT_CONTENT_TYPE,
        part_size_bytes: int = DEFAULT_COMPOSE_PART_SIZE_BYTES,
    ) -> StoredObject:
        """See :meth:`.port.ObjectStore.compose` and :mod:`.minio_compose`."""
        return self._composer.compose(
            bucket,
            key,
            source,
            patches,
            sha256=sha256,
            content_type=content_type,
            part_size_bytes=part_size_bytes,
        )

    def _hash_object(self, bucket: str, key: str) -> str:
        with self.open_stream(bucket, key) as stream:
            reader = HashingReader(stream)
            while reader.read(HASH_CHUNK_BYTES):
                pass
            return reader.hexdigest()

    def delete(self, bucket: str, key: str) -> None:
        """See :meth:`.port.ObjectStore.delete`."""
        with translated("delete", bucket, key):
            self._client.remove_object(bucket, key)

    def ensure_buckets(self, names: Iterable[str]) -> None:
        """See :meth:`.port.ObjectStore.ensure_buckets`."""
        for name in names:
            with translated("create bucket", name, None):
                if self._client.bucket_exists(name):
                    continue
                try:
                    self._client.make_bucket(name, location=self._settings.region)
                except Exception as exc:
                    # Another replica created it between our check and our create.
                    if getattr(exc, "code", None) not in (
                        "BucketAlreadyOwnedByYou",
                        "BucketAlreadyExists",
                    ):
                        raise

    # -- reads ------------------------------------------------------------------------------

    @contextmanager
    def open_stream(
        self,
        bucket: str,
        key: str,
        *,
        offset: int = 0,
        length: int | None = None,
    ) -> Iterator[BinaryIO]:
        """See :meth:`.port.ObjectStore.open_stream`."""
        if offset < 0:
            msg = f"offset must be >= 0, got {offset}"
            raise ValueError(msg)
        if length is not None and length < 0:
            msg = f"length must be >= 0 or None, got {length}"
            raise ValueError(msg)
        if length == 0:
            # The SDK reads length 0 as "to the end"; an empty range needs no request.
            yield io.BytesIO(b"")
            return
        with translated("get", bucket, key):
            response = self._client.get_object(bucket, key, offset=offset, length=length or 0)
        try:
            yield io.BufferedReader(
                ResponseReader(response, bucket, key), buffer_size=_READ_BUFFER_BYTES
            )
        finally:
            response.close()
            response.release_conn()

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """See :meth:`.port.ObjectStore.stat`."""
        try:
            with translated("stat", bucket, key, not_found_returns=True):
                obj = self._client.stat_object(bucket, key)
        except MissingObjectError:
            return None
        metadata, sha256 = parse_user_metadata(obj.metadata)
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=obj.size or 0,
            etag=strip_etag(obj.etag),
            sha256=sha256,
            content_type=obj.content_type or DEFAULT_CONTENT_TYPE,
            last_modified=obj.last_modified,
            metadata=metadata,
        )

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectSummary]:
        """See :meth:`.port.ObjectStore.list`."""
        with translated("list", bucket, prefix or None):
            for obj in self._client.list_objects(bucket, prefix=prefix or None, recursive=True):
                if getattr(obj, "is_dir", False):
                    continue
                yield ObjectSummary(
                    bucket=bucket,
                    key=obj.object_name,
                    size_bytes=obj.size or 0,
                    etag=strip_etag(obj.etag),
                    last_modified=obj.last_modified,
                )

    def presign_get(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        """See :meth:`.port.ObjectStore.presign_get`."""
        expires = _check_expiry(expires_s)
        with translated("presign get", bucket, key):
            url: str = self._client.presigned_get_object(bucket, key, expires=expires)
        return url

    def presign_put(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        """See :meth:`.port.ObjectStore.presign_put`."""
        expires = _check_expiry(expires_s)
        with translated("presign put", bucket, key):
            url: str = self._client.presigned_put_object(bucket, key, expires=expires)
        return url

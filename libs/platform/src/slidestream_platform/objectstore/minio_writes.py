"""Puts over the MinIO SDK that keep the object's SHA-256 in one pass.

* An object that fits in one part (known length <= part size, or a stream of unknown length
  that ends within one part) is read into memory, hashed, and sent with one ``PutObject``
  already carrying ``x-amz-meta-sha256``;
* a larger object goes up as a multipart upload while a :class:`~.streams.HashingReader` hashes
  it; the digest is known only once the last part is read, after S3 has fixed the object's
  metadata, so the object is then stamped by a server-side copy onto itself with
  ``x-amz-metadata-directive: REPLACE`` (the documented way to change S3 metadata; MinIO does
  it without rewriting data). The copy is conditional on the ETag of the upload just completed
  (``x-amz-copy-source-if-match``), so a concurrent writer's object is never stamped with our
  digest. A crash between the two steps leaves an object without the digest: readers treat it
  as incomplete and the idempotent retry overwrites it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import BinaryIO, cast

from minio import Minio
from minio.commonconfig import REPLACE, CopySource

from slidestream_platform.errors import PoisonError, SlidestreamError
from slidestream_platform.objectstore.parts import is_multipart, part_size_for
from slidestream_platform.objectstore.port import DEFAULT_CONTENT_TYPE, StoredObject
from slidestream_platform.objectstore.s3_metadata import (
    SdkHeaders,
    check_metadata,
    headers_for,
    strip_etag,
)
from slidestream_platform.objectstore.sdk_errors import translated
from slidestream_platform.objectstore.settings import ObjectStoreSettings
from slidestream_platform.objectstore.streams import (
    HASH_CHUNK_BYTES,
    HashingReader,
    PrefixedReader,
    Readable,
    read_up_to,
)


class StreamLengthError(PoisonError):
    """The stream held fewer bytes than the caller declared."""

    reason = "stream-length-mismatch"


class MinioWriter:
    """``put_stream`` and ``put_file`` of :class:`~.minio_store.MinioObjectStore`."""

    def __init__(self, client: Minio, settings: ObjectStoreSettings) -> None:
        self._client = client
        self._settings = settings

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
        """See :meth:`.port.ObjectStore.put_stream`."""
        user_metadata = check_metadata(metadata)
        part_size_bytes = part_size_for(length, self._settings.multipart_part_size_bytes)
        reader = HashingReader(stream)
        if not is_multipart(length, part_size_bytes):
            assert length is not None  # is_multipart is True for unknown lengths
            body = read_up_to(reader, length)
            _check_length(bucket, key, expected=length, actual=len(body))
            return self._put_single(bucket, key, body, reader, content_type, user_metadata)
        if length is None:
            # Read one byte past a part to learn whether one request suffices.
            head = read_up_to(reader, part_size_bytes + 1)
            if len(head) <= part_size_bytes:
                return self._put_single(bucket, key, head, reader, content_type, user_metadata)
            source: Readable = PrefixedReader(head, reader)
            del head
        else:
            source = reader
        return self._put_multipart(
            bucket, key, source, reader, length, part_size_bytes, content_type, user_metadata
        )

    def _put_single(
        self,
        bucket: str,
        key: str,
        body: bytes,
        reader: HashingReader,
        content_type: str,
        user_metadata: Mapping[str, str],
    ) -> StoredObject:
        sha256 = reader.hexdigest()
        headers = headers_for(content_type, user_metadata, sha256)
        with translated("put", bucket, key):
            result = self._client.put_object(
                bucket,
                key,
                io.BytesIO(body),
                len(body),
                content_type=content_type,
                metadata=headers,
            )
        return StoredObject(
            bucket=bucket,
            key=key,
            sha256=sha256,
            size_bytes=len(body),
            etag=strip_etag(result.etag),
        )

    def _put_multipart(
        self,
        bucket: str,
        key: str,
        source: Readable,
        reader: HashingReader,
        length: int | None,
        part_size_bytes: int,
        content_type: str,
        user_metadata: Mapping[str, str],
    ) -> StoredObject:
        try:
            with translated("put", bucket, key):
                result = self._client.put_object(
                    bucket,
                    key,
                    # The SDK only ever calls read(size) on its input.
                    cast(BinaryIO, source),
                    -1 if length is None else length,
                    content_type=content_type,
                    metadata=SdkHeaders(user_metadata),
                    part_size=part_size_bytes,
                    num_parallel_uploads=self._settings.multipart_parallel_uploads,
                )
        except SlidestreamError:
            if length is not None and reader.at_eof:
                _check_length(bucket, key, expected=length, actual=reader.bytes_read)
            raise
        size_bytes = reader.bytes_read
        if length is not None:
            _check_length(bucket, key, expected=length, actual=size_bytes)
        sha256 = reader.hexdigest()
        return self._stamp(
            bucket, key, strip_etag(result.etag), size_bytes, sha256, content_type, user_metadata
        )

    def _stamp(
        self,
        bucket: str,
        key: str,
        upload_etag: str,
        size_bytes: int,
        sha256: str,
        content_type: str,
        user_metadata: Mapping[str, str],
    ) -> StoredObject:
        """Set the digest of a just-completed multipart object (see the module docstring)."""
        with translated("stamp digest on", bucket, key):
            stamped = self._client.copy_object(
                bucket,
                key,
                CopySource(bucket, key, match_etag=upload_etag),
                metadata=headers_for(content_type, user_metadata, sha256),
                metadata_directive=REPLACE,
            )
        return StoredObject(
            bucket=bucket,
            key=key,
            sha256=sha256,
            size_bytes=size_bytes,
            etag=strip_etag(stamped.etag) or upload_etag,
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
        """See :meth:`.port.ObjectStore.put_file`.

        A file larger than one part is hashed first (a local read, about 1 GB/s) so that its
        digest goes in at creation: the stamping copy of :meth:`put_stream` rewrites a multipart
        object in full on MinIO. The upload hashes again and a file that changed in between is
        deleted from the store and refused.
        """
        file_path = Path(path)
        with file_path.open("rb") as stream:
            length = file_path.stat().st_size
            part_size_bytes = part_size_for(length, self._settings.multipart_part_size_bytes)
            if not is_multipart(length, part_size_bytes):
                return self.put_stream(
                    bucket, key, stream, length, content_type=content_type, metadata=metadata
                )
            user_metadata = check_metadata(metadata)
            digest = hashlib.sha256()
            while chunk := stream.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
            stream.seek(0)
            sha256 = digest.hexdigest()
            reader = HashingReader(stream)
            with translated("put", bucket, key):
                result = self._client.put_object(
                    bucket,
                    key,
                    cast(BinaryIO, reader),
                    length,
                    content_type=content_type,
                    metadata=headers_for(content_type, user_metadata, sha256),
                    part_size=part_size_bytes,
                    num_parallel_uploads=self._settings.multipart_parallel_uploads,
                )
            if reader.bytes_read != length or reader.hexdigest() != sha256:
                with translated("delete", bucket, key):
                    self._client.remove_object(bucket, key)
                msg = f"put s3://{bucket}/{key}: {file_path.name} changed while it was uploaded"
                raise StreamLengthError(msg)
        return StoredObject(
            bucket=bucket,
            key=key,
            sha256=sha256,
            size_bytes=length,
            etag=strip_etag(result.etag),
        )


def _check_length(bucket: str, key: str, *, expected: int, actual: int) -> None:
    """Refuse a stream that ended before the length its caller declared."""
    if actual != expected:
        msg = f"put s3://{bucket}/{key}: stream ended after {actual} of {expected} bytes"
        raise StreamLengthError(msg)

"""The :class:`~.port.ObjectStore` over the MinIO Python SDK (works with any S3 server).

How a put keeps the digest in one pass:

* an object that fits in one part (known length <= part size, or a stream of unknown length
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

How :meth:`MinioObjectStore.compose` builds an object from another one plus patches: one
multipart upload whose untouched parts are ``UploadPartCopy`` ranges of the source (the bytes
stay in the server) and whose patched parts are read back by range, patched and uploaded, in a
thread pool. The caller knows the digest before it starts, so the digest goes in at
``CreateMultipartUpload`` and no stamping copy follows (on MinIO that copy rewrites a multipart
object in full: 7.5 s for 1.5 GiB, more than the compose itself).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, Final, NoReturn, cast

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.datatypes import Part
from minio.helpers import genheaders
from urllib3.util import Retry, Timeout

from slidestream_platform.errors import ObjectNotFoundError, PoisonError, SlidestreamError
from slidestream_platform.objectstore.error_mapping import is_not_found, map_s3_exception
from slidestream_platform.objectstore.parts import (
    DEFAULT_COMPOSE_PART_SIZE_BYTES,
    ComposePart,
    is_multipart,
    part_size_for,
    patched_range,
    plan_compose,
)
from slidestream_platform.objectstore.port import (
    DEFAULT_CONTENT_TYPE,
    MAX_PRESIGN_EXPIRY_S,
    SHA256_METADATA_KEY,
    ObjectInfo,
    ObjectSummary,
    StoredObject,
)
from slidestream_platform.objectstore.settings import ObjectStoreSettings
from slidestream_platform.objectstore.streams import (
    HashingReader,
    PrefixedReader,
    Readable,
    read_up_to,
)

_USER_METADATA_PREFIX: Final = "x-amz-meta-"
#: User-metadata names: lower-case HTTP token characters, so they survive every S3 server.
_METADATA_KEY_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]*$")
#: Values travel as HTTP header values: printable US-ASCII only (RFC 9110 section 5.5).
_METADATA_VALUE_RE: Final = re.compile(r"^[\x20-\x7e]*$")
_SHA256_HEX_RE: Final = re.compile(r"^[0-9a-f]{64}$")
#: Read buffer of streams handed out by ``open_stream``.
_READ_BUFFER_BYTES: Final = 1024 * 1024
#: Chunk size when hashing an object that lacks the digest (see ``copy``).
_HASH_CHUNK_BYTES: Final = 8 * 1024 * 1024
#: Backoff base of in-call retries (the SDK's default; S3 requests are idempotent).
_HTTP_RETRY_BACKOFF_S: Final = 0.2
_HTTP_POOL_SIZE: Final = 16
#: Parts of a compose in flight at once (server-side copies mostly: cheap for this process).
_COMPOSE_PARALLEL_PARTS: Final = 4

logger = logging.getLogger(__name__)

#: The SDK's type for header/metadata dictionaries.
_SdkHeaders = dict[str, str | list[str] | tuple[str]]


class StreamLengthError(PoisonError):
    """The stream held fewer bytes than the caller declared."""

    reason = "stream-length-mismatch"


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not _METADATA_KEY_RE.match(name):
            msg = f"metadata name {name!r} must match {_METADATA_KEY_RE.pattern}"
            raise ValueError(msg)
        if name == SHA256_METADATA_KEY:
            msg = f"metadata name {name!r} is reserved for the content digest"
            raise ValueError(msg)
        if not _METADATA_VALUE_RE.match(value):
            msg = f"metadata value of {name!r} must be printable ASCII"
            raise ValueError(msg)
        checked[name] = value
    return checked


def _check_expiry(expires_s: int) -> timedelta:
    if not 1 <= expires_s <= MAX_PRESIGN_EXPIRY_S:
        msg = f"expires_s must be within [1, {MAX_PRESIGN_EXPIRY_S}], got {expires_s}"
        raise ValueError(msg)
    return timedelta(seconds=expires_s)


def _strip_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def _headers_for(content_type: str, user_metadata: Mapping[str, str], sha256: str) -> _SdkHeaders:
    # The SDK sends Content-Type as is and prefixes every other name with x-amz-meta-.
    headers: _SdkHeaders = {"Content-Type": content_type, **user_metadata}
    headers[SHA256_METADATA_KEY] = sha256
    return headers


def _user_metadata(raw: Mapping[str, str] | None) -> tuple[dict[str, str], str | None]:
    metadata: dict[str, str] = {}
    sha256: str | None = None
    for header, value in (raw or {}).items():
        name = header.lower()
        if not name.startswith(_USER_METADATA_PREFIX):
            continue
        name = name.removeprefix(_USER_METADATA_PREFIX)
        if name == SHA256_METADATA_KEY:
            digest = value.strip().lower()
            # Someone else's malformed value is no digest at all, not a reason to fail.
            sha256 = digest if _SHA256_HEX_RE.match(digest) else None
        else:
            metadata[name] = value
    return metadata, sha256


class _ResponseReader(io.RawIOBase):
    """A raw stream over an SDK response whose read errors are platform errors."""

    def __init__(self, response: Any, bucket: str, key: str) -> None:
        super().__init__()
        self._response = response
        self._bucket = bucket
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            # urllib3 checks Content-Length, so a cut connection raises instead of a short EOF.
            count: int = self._response.readinto(buffer)
        except Exception as exc:
            mapped = map_s3_exception(exc, operation="read", bucket=self._bucket, key=self._key)
            if mapped is None:
                raise
            raise mapped from exc
        return count


class MinioObjectStore:
    """:class:`~.port.ObjectStore` implementation over ``minio.Minio``."""

    def __init__(self, settings: ObjectStoreSettings, *, client: Minio | None = None) -> None:
        self._settings = settings
        self._client = client if client is not None else self._make_client(settings)

    @staticmethod
    def _make_client(settings: ObjectStoreSettings) -> Minio:
        # Our own pool instead of the SDK default, whose connect timeout is five minutes.
        http = urllib3.PoolManager(
            timeout=Timeout(connect=settings.connect_timeout_s, read=settings.read_timeout_s),
            maxsize=max(_HTTP_POOL_SIZE, settings.multipart_parallel_uploads + 2),
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(settings.ca_bundle_path or certifi.where()),
            retries=Retry(
                total=settings.http_retries,
                backoff_factor=_HTTP_RETRY_BACKOFF_S,
                status_forcelist=[500, 502, 503, 504],
            ),
        )
        return Minio(
            settings.netloc,
            access_key=settings.access_key,
            secret_key=settings.secret_key.get_secret_value(),
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )

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
        """See :meth:`.port.ObjectStore.put_stream`."""
        user_metadata = _check_metadata(metadata)
        part_size_bytes = part_size_for(length, self._settings.multipart_part_size_bytes)
        reader = HashingReader(stream)
        if not is_multipart(length, part_size_bytes):
            assert length is not None  # is_multipart is True for unknown lengths
            body = read_up_to(reader, length)
            self._check_length(bucket, key, expected=length, actual=len(body))
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
        headers = _headers_for(content_type, user_metadata, sha256)
        with self._translated("put", bucket, key):
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
            etag=_strip_etag(result.etag),
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
            with self._translated("put", bucket, key):
                result = self._client.put_object(
                    bucket,
                    key,
                    # The SDK only ever calls read(size) on its input.
                    cast(BinaryIO, source),
                    -1 if length is None else length,
                    content_type=content_type,
                    metadata=_SdkHeaders(user_metadata),
                    part_size=part_size_bytes,
                    num_parallel_uploads=self._settings.multipart_parallel_uploads,
                )
        except SlidestreamError:
            if length is not None and reader.at_eof:
                self._check_length(bucket, key, expected=length, actual=reader.bytes_read)
            raise
        size_bytes = reader.bytes_read
        if length is not None:
            self._check_length(bucket, key, expected=length, actual=size_bytes)
        sha256 = reader.hexdigest()
        return self._stamp(
            bucket, key, _strip_etag(result.etag), size_bytes, sha256, content_type, user_metadata
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
        with self._translated("stamp digest on", bucket, key):
            stamped = self._client.copy_object(
                bucket,
                key,
                CopySource(bucket, key, match_etag=upload_etag),
                metadata=_headers_for(content_type, user_metadata, sha256),
                metadata_directive=REPLACE,
            )
        return StoredObject(
            bucket=bucket,
            key=key,
            sha256=sha256,
            size_bytes=size_bytes,
            etag=_strip_etag(stamped.etag) or upload_etag,
        )

    @staticmethod
    def _check_length(bucket: str, key: str, *, expected: int, actual: int) -> None:
        if actual != expected:
            msg = f"put s3://{bucket}/{key}: stream ended after {actual} of {expected} bytes"
            raise StreamLengthError(msg)

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
            user_metadata = _check_metadata(metadata)
            digest = hashlib.sha256()
            while chunk := stream.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
            stream.seek(0)
            sha256 = digest.hexdigest()
            reader = HashingReader(stream)
            with self._translated("put", bucket, key):
                result = self._client.put_object(
                    bucket,
                    key,
                    cast(BinaryIO, reader),
                    length,
                    content_type=content_type,
                    metadata=_headers_for(content_type, user_metadata, sha256),
                    part_size=part_size_bytes,
                    num_parallel_uploads=self._settings.multipart_parallel_uploads,
                )
            if reader.bytes_read != length or reader.hexdigest() != sha256:
                self.delete(bucket, key)
                msg = f"put s3://{bucket}/{key}: {file_path.name} changed while it was uploaded"
                raise StreamLengthError(msg)
        return StoredObject(
            bucket=bucket,
            key=key,
            sha256=sha256,
            size_bytes=length,
            etag=_strip_etag(result.etag),
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
        with self._translated("copy to", dst_bucket, dst_key):
            # REPLACE with the full metadata: the SDK copies objects over 5 GiB part by part,
            # where S3 cannot carry metadata across by itself. The ETag condition ties the
            # digest to the exact version that was read.
            result = self._client.copy_object(
                dst_bucket,
                dst_key,
                CopySource(src_bucket, src_key, match_etag=info.etag),
                metadata=_headers_for(info.content_type, info.metadata, sha256),
                metadata_directive=REPLACE,
            )
        return StoredObject(
            bucket=dst_bucket,
            key=dst_key,
            sha256=sha256,
            size_bytes=info.size_bytes,
            etag=_strip_etag(result.etag),
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
        """See :meth:`.port.ObjectStore.compose`."""
        if not _SHA256_HEX_RE.match(sha256):
            msg = "sha256 must be a lowercase hex SHA-256"
            raise ValueError(msg)
        if not source.etag:
            msg = f"compose from s3://{source.bucket}/{source.key}: the source has no ETag"
            raise ValueError(msg)
        plan = plan_compose(source.size_bytes, patches, part_size_bytes)
        # The SDK's compose_object cannot mix uploaded bytes with copied ranges; its multipart
        # steps (create, UploadPart, UploadPartCopy, complete, abort) are underscore methods.
        headers = genheaders(_headers_for(content_type, {}, sha256), None, None, None, False)
        with self._translated("start compose of", bucket, key):
            upload_id = self._client._create_multipart_upload(bucket, key, headers)
        pool = ThreadPoolExecutor(_COMPOSE_PARALLEL_PARTS, thread_name_prefix="compose")
        futures: list[Future[Part]] = []
        try:
            futures = [
                pool.submit(self._compose_part, bucket, key, upload_id, source, patches, part)
                for part in plan
            ]
            parts = [future.result() for future in futures]
            with self._translated("complete compose of", bucket, key):
                completed = self._client._complete_multipart_upload(bucket, key, upload_id, parts)
        except BaseException:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)
            self._abort_upload(bucket, key, upload_id)
            raise
        pool.shutdown(wait=True)
        return StoredObject(
            bucket=bucket,
            key=key,
            sha256=sha256,
            size_bytes=plan[-1].end,
            etag=_strip_etag(completed.etag),
        )

    def _compose_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        source: ObjectInfo,
        patches: Sequence[tuple[int, bytes]],
        part: ComposePart,
    ) -> Part:
        if part.copied:
            headers = CopySource(source.bucket, source.key, match_etag=source.etag)
            copy_headers: _SdkHeaders = dict(headers.gen_copy_headers())
            copy_headers["x-amz-copy-source-range"] = f"bytes={part.start}-{part.end - 1}"
            with self._translated("copy a part into", bucket, key):
                etag, _ = self._client._upload_part_copy(
                    bucket, key, upload_id, part.number, copy_headers
                )
            return Part(part.number, _strip_etag(etag))
        base = b""
        if part.start < source.size_bytes:
            length = min(part.end, source.size_bytes) - part.start
            base = self._read_range(source, part.start, length)
        data = patched_range(base, part.start, part.end, patches)
        with self._translated("upload a part of", bucket, key):
            etag = self._client._upload_part(bucket, key, data, None, upload_id, part.number)
        return Part(part.number, _strip_etag(etag))

    def _read_range(self, source: ObjectInfo, offset: int, length: int) -> bytes:
        with self._translated("get", source.bucket, source.key):
            response = self._client.get_object(
                source.bucket,
                source.key,
                offset=offset,
                length=length,
                request_headers={"If-Match": f'"{source.etag}"'},
            )
        try:
            data = read_up_to(_ResponseReader(response, source.bucket, source.key), length)
        finally:
            response.close()
            response.release_conn()
        if len(data) != length:
            msg = f"get s3://{source.bucket}/{source.key}: short range read"
            raise StreamLengthError(msg)
        return data

    def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            with self._translated("abort compose of", bucket, key):
                self._client._abort_multipart_upload(bucket, key, upload_id)
        except SlidestreamError:
            # The original error matters more; an upload left behind is invisible and the
            # bucket's AbortIncompleteMultipartUpload lifecycle rule removes it.
            logger.warning("abort of a compose failed", extra={"bucket": bucket, "key": key})

    def _hash_object(self, bucket: str, key: str) -> str:
        with self.open_stream(bucket, key) as stream:
            reader = HashingReader(stream)
            while reader.read(_HASH_CHUNK_BYTES):
                pass
            return reader.hexdigest()

    def delete(self, bucket: str, key: str) -> None:
        """See :meth:`.port.ObjectStore.delete`."""
        with self._translated("delete", bucket, key):
            self._client.remove_object(bucket, key)

    def ensure_buckets(self, names: Iterable[str]) -> None:
        """See :meth:`.port.ObjectStore.ensure_buckets`."""
        for name in names:
            with self._translated("create bucket", name, None):
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
        with self._translated("get", bucket, key):
            response = self._client.get_object(bucket, key, offset=offset, length=length or 0)
        try:
            yield io.BufferedReader(
                _ResponseReader(response, bucket, key), buffer_size=_READ_BUFFER_BYTES
            )
        finally:
            response.close()
            response.release_conn()

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """See :meth:`.port.ObjectStore.stat`."""
        try:
            with self._translated("stat", bucket, key, not_found_returns=True):
                obj = self._client.stat_object(bucket, key)
        except _NotFoundError:
            return None
        metadata, sha256 = _user_metadata(obj.metadata)
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=obj.size or 0,
            etag=_strip_etag(obj.etag),
            sha256=sha256,
            content_type=obj.content_type or DEFAULT_CONTENT_TYPE,
            last_modified=obj.last_modified,
            metadata=metadata,
        )

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectSummary]:
        """See :meth:`.port.ObjectStore.list`."""
        with self._translated("list", bucket, prefix or None):
            for obj in self._client.list_objects(bucket, prefix=prefix or None, recursive=True):
                if getattr(obj, "is_dir", False):
                    continue
                yield ObjectSummary(
                    bucket=bucket,
                    key=obj.object_name,
                    size_bytes=obj.size or 0,
                    etag=_strip_etag(obj.etag),
                    last_modified=obj.last_modified,
                )

    def presign_get(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        """See :meth:`.port.ObjectStore.presign_get`."""
        expires = _check_expiry(expires_s)
        with self._translated("presign get", bucket, key):
            url: str = self._client.presigned_get_object(bucket, key, expires=expires)
        return url

    def presign_put(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        """See :meth:`.port.ObjectStore.presign_put`."""
        expires = _check_expiry(expires_s)
        with self._translated("presign put", bucket, key):
            url: str = self._client.presigned_put_object(bucket, key, expires=expires)
        return url

    # -- error translation ------------------------------------------------------------------

    @contextmanager
    def _translated(
        self, operation: str, bucket: str, key: str | None, *, not_found_returns: bool = False
    ) -> Iterator[None]:
        try:
            yield
        except SlidestreamError:
            raise
        except Exception as exc:
            if not_found_returns and is_not_found(exc):
                raise _NotFoundError from exc
            mapped = map_s3_exception(exc, operation=operation, bucket=bucket, key=key)
            if mapped is None:
                raise
            _raise(mapped, exc)


class _NotFoundError(Exception):
    """Internal signal: the object is missing and the caller wants ``None``."""


def _raise(error: SlidestreamError, cause: BaseException) -> NoReturn:
    raise error from cause

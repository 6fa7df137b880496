"""In-memory stand-ins for the ports services share (object store, publisher, the publication
verifier of :mod:`slidestream_platform.decisions`), for unit tests; :class:`SparseBytes` stands
for an object too large to hold (zeros but for a few runs, made on read and counted)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, cast
from uuid import UUID

from slidestream_contracts.events import SlideEvent
from slidestream_platform.errors import ObjectNotFoundError
from slidestream_platform.objectstore.parts import check_patches, patched_range
from slidestream_platform.objectstore.port import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectSummary,
    StoredObject,
)
from slidestream_platform.publication import PublishMark


def _etag(data: bytes) -> str:
    # A single-part S3 ETag is the content's MD5: another content, another ETag.
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class MemoryStore:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    composes: list[tuple[str, str]] = field(default_factory=list)
    """Every object written by compose (bucket, key)."""

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
        data = stream.read() if length is None else stream.read(length)
        self.objects[(bucket, key)] = data
        return StoredObject(
            bucket=bucket,
            key=key,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            etag=_etag(data),
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
        with Path(path).open("rb") as handle:
            return self.put_stream(bucket, key, handle, content_type=content_type)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> StoredObject:
        return self.put_stream(bucket, key, io.BytesIO(data))

    @contextmanager
    def open_stream(
        self, bucket: str, key: str, *, offset: int = 0, length: int | None = None
    ) -> Iterator[BinaryIO]:
        if (bucket, key) not in self.objects:
            raise ObjectNotFoundError(f"s3://{bucket}/{key}: not found")
        data = self.objects[(bucket, key)]
        end = len(data) if length is None else offset + length
        yield io.BytesIO(data[offset:end])

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        data = self.objects.get((bucket, key))
        if data is None:
            return None
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=len(data),
            etag=_etag(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)
        self.deleted.append((bucket, key))

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> StoredObject:
        return self.put_bytes(dst_bucket, dst_key, self.objects[(src_bucket, src_key)])

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
        """The port's contract in memory (and the digest checked, which S3 cannot do)."""
        current = self.stat(source.bucket, source.key)
        if current is None or current.etag != source.etag:
            raise ObjectNotFoundError(f"s3://{source.bucket}/{source.key}: that version is gone")
        check_patches(patches)
        size = max([source.size_bytes, *(offset + len(data) for offset, data in patches)])
        data = patched_range(self.objects[(source.bucket, source.key)], 0, size, patches)
        if sha256 != hashlib.sha256(data).hexdigest():
            raise AssertionError("compose was given the digest of other bytes")
        self.objects[(bucket, key)] = data
        self.composes.append((bucket, key))
        return StoredObject(
            bucket=bucket, key=key, sha256=sha256, size_bytes=size, etag=_etag(data)
        )

    def presign_get(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        return f"memory://{bucket}/{key}"

    def presign_put(self, bucket: str, key: str, expires_s: int = 3600) -> str:
        return f"memory://{bucket}/{key}"

    def ensure_buckets(self, names: Iterable[str]) -> None:
        pass

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectSummary]:
        for (b, key), data in sorted(self.objects.items()):
            if b == bucket and key.startswith(prefix):
                yield ObjectSummary(bucket=b, key=key, size_bytes=len(data), etag=_etag(data))


@dataclass
class SparseBytes:
    """A large object of zeros but for ``runs`` (offset -> bytes), made only where it is read.

    Counts the bytes served; past ``read_budget_bytes`` a read fails the test at once, so code
    that should read a few places of a huge object cannot read all of it.
    """

    size_bytes: int
    runs: dict[int, bytes]
    read_budget_bytes: int | None = None
    served_bytes: int = 0

    def read_at(self, offset: int, length: int) -> bytes:
        end = min(offset + max(length, 0), self.size_bytes)
        if end <= offset:
            return b""
        self.served_bytes += end - offset
        if self.read_budget_bytes is not None and self.served_bytes > self.read_budget_bytes:
            raise AssertionError(
                f"{self.served_bytes} bytes read of a {self.size_bytes}-byte object "
                f"(budget {self.read_budget_bytes})"
            )
        out = bytearray(end - offset)
        for at, data in self.runs.items():
            lo, hi = max(at, offset), min(at + len(data), end)
            if lo < hi:
                out[lo - offset : hi - offset] = data[lo - at : hi - at]
        return bytes(out)

    def reader(self, offset: int = 0, length: int | None = None) -> BinaryIO:
        """A seekable reader over ``[offset, offset + length)``, made lazily."""
        end = self.size_bytes if length is None else min(offset + length, self.size_bytes)
        return cast(BinaryIO, io.BufferedReader(_SparseRange(self, offset, end)))


class _SparseRange(io.RawIOBase):
    def __init__(self, data: SparseBytes, start: int, end: int) -> None:
        super().__init__()
        self._data, self._start, self._end, self._position = data, start, end, start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position - self._start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: self._start, io.SEEK_CUR: self._position, io.SEEK_END: self._end}
        self._position = max(base[whence] + offset, self._start)
        return self._position - self._start

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._data.read_at(self._position, min(len(view), self._end - self._position))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


@dataclass
class SparseStore(MemoryStore):
    """:class:`MemoryStore` that also holds :class:`SparseBytes` objects (stat and ranged reads;
    no sha256 metadata, like an object tusd wrote)."""

    sparse: dict[tuple[str, str], SparseBytes] = field(default_factory=dict)

    def put_sparse(self, bucket: str, key: str, data: SparseBytes) -> None:
        self.sparse[(bucket, key)] = data

    @contextmanager
    def open_stream(
        self, bucket: str, key: str, *, offset: int = 0, length: int | None = None
    ) -> Iterator[BinaryIO]:
        data = self.sparse.get((bucket, key))
        if data is None:
            with super().open_stream(bucket, key, offset=offset, length=length) as stream:
                yield stream
            return
        yield data.reader(offset, length)

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        data = self.sparse.get((bucket, key))
        if data is None:
            return super().stat(bucket, key)
        return ObjectInfo(bucket=bucket, key=key, size_bytes=data.size_bytes, etag="sparse")

    def delete(self, bucket: str, key: str) -> None:
        self.sparse.pop((bucket, key), None)
        super().delete(bucket, key)


@dataclass
class RecordingPublisher:
    sent: list[tuple[SlideEvent, UUID | None]] = field(default_factory=list)

    async def publish(self, event: SlideEvent, *, event_id: UUID | None = None) -> None:
        self.sent.append((event, event_id))


@dataclass
class FakeVerifier:
    """Marks a fixed place; ``already_out`` are the ids a crashed attempt got into the log."""

    already_out: set[UUID] = field(default_factory=set)
    checked: list[UUID] = field(default_factory=list)

    async def mark(self, event: SlideEvent) -> PublishMark:
        return PublishMark(partition=2, from_offset=100)

    async def was_published(self, event: SlideEvent, mark: PublishMark, event_id: UUID) -> bool:
        self.checked.append(event_id)
        return event_id in self.already_out


@dataclass
class FakeClock:
    """A monotonic clock that moves only when told (``clock=`` of rate limiters, leases)."""

    now_s: float = 1_000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds

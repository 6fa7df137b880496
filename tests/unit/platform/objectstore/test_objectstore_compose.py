"""Server-side compose: the part plan, and MinioObjectStore.compose against an S3 stand-in."""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Any

import pytest
from minio.datatypes import Part

from slidestream_platform.objectstore import MinioObjectStore, ObjectInfo, ObjectStoreSettings
from slidestream_platform.objectstore.parts import (
    S3_MIN_PART_SIZE_BYTES,
    ComposePart,
    patched_range,
    plan_compose,
)

MIB = 1024 * 1024
PART = S3_MIN_PART_SIZE_BYTES


def test_plan_copies_untouched_parts_and_uploads_patched_and_grown_ones() -> None:
    source_size = 3 * PART + 100
    patches = [(10, b"x"), (2 * PART - 1, b"yy"), (source_size, b"tail")]
    plan = plan_compose(source_size, patches, PART)
    assert plan == [
        ComposePart(1, 0, PART, copied=False),
        ComposePart(2, PART, 2 * PART, copied=False),
        ComposePart(3, 2 * PART, 3 * PART, copied=False),  # the second patch crosses into it
        ComposePart(4, 3 * PART, source_size + 4, copied=False),  # grows past the source
    ]
    untouched = plan_compose(source_size, [(PART + 5, b"z")], PART)
    assert [p.copied for p in untouched] == [True, False, True, True]
    assert untouched[-1].end == source_size


def test_plan_refuses_bad_patches_and_small_parts() -> None:
    with pytest.raises(ValueError, match="sorted"):
        plan_compose(100, [(50, b"a"), (10, b"b")], PART)
    with pytest.raises(ValueError, match="sorted"):
        plan_compose(100, [(10, b"")], PART)
    with pytest.raises(ValueError, match="part size"):
        plan_compose(100, [], PART - 1)
    with pytest.raises(ValueError, match="empty"):
        plan_compose(0, [], PART)


def test_patched_range_applies_only_what_falls_inside() -> None:
    patches = [(2, b"AB"), (7, b"CDEF")]
    # Bytes 1..5 of the source, then a range that runs past its end.
    assert patched_range(b"12345", 1, 10, patches) == b"1AB45\x00CDE"


class S3StandIn:
    """Just enough S3 multipart (and the SDK's calls for it) to check what compose sends."""

    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.calls: list[str] = []
        self.aborted: list[str] = []
        self.lock = threading.Lock()
        self.etag_of = {k: hashlib.md5(v).hexdigest() for k, v in objects.items()}

    def _create_multipart_upload(self, bucket: str, key: str, headers: dict[str, Any]) -> str:
        self.calls.append(f"create:{headers['X-Amz-Meta-sha256']}:{headers['Content-Type']}")
        upload_id = f"u{len(self.uploads)}"
        self.uploads[upload_id] = {}
        return upload_id

    def _upload_part_copy(
        self, bucket: str, key: str, upload_id: str, number: int, headers: dict[str, str]
    ) -> tuple[str, None]:
        src_bucket, src_key = headers["x-amz-copy-source"].lstrip("/").split("/", 1)
        if headers["x-amz-copy-source-if-match"] != self.etag_of[(src_bucket, src_key)]:
            raise RuntimeError("precondition failed")
        first, last = headers["x-amz-copy-source-range"].removeprefix("bytes=").split("-")
        data = self.objects[(src_bucket, src_key)][int(first) : int(last) + 1]
        with self.lock:
            self.calls.append("copy")
            self.uploads[upload_id][number] = data
        return f"e{number}", None

    def _upload_part(
        self, bucket: str, key: str, data: bytes, headers: Any, upload_id: str, number: int
    ) -> str:
        with self.lock:
            self.calls.append("upload")
            self.uploads[upload_id][number] = data
        return f"e{number}"

    def get_object(
        self, bucket: str, key: str, offset: int, length: int, request_headers: dict[str, str]
    ) -> Any:
        assert request_headers["If-Match"] == f'"{self.etag_of[(bucket, key)]}"'
        return _Body(self.objects[(bucket, key)][offset : offset + length])

    def _complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: list[Part]
    ) -> Any:
        self.calls.append("complete")
        assert [p.part_number for p in parts] == sorted(self.uploads[upload_id])
        uploaded = self.uploads.pop(upload_id)
        data = b"".join(uploaded[p.part_number] for p in parts)
        self.objects[(bucket, key)] = data
        return _Result("composed")

    def _abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.aborted.append(upload_id)
        self.uploads.pop(upload_id, None)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class _Result:
    def __init__(self, etag: str) -> None:
        self.etag = etag


def _store(client: S3StandIn) -> MinioObjectStore:
    settings = ObjectStoreSettings.model_validate(
        {"endpoint": "http://127.0.0.1:9000", "access_key": "a", "secret_key": "s"}
    )
    return MinioObjectStore(settings, client=client)  # type: ignore[arg-type]


def _source(client: S3StandIn) -> ObjectInfo:
    data = client.objects[("quarantine", "t/s/original")]
    return ObjectInfo(
        bucket="quarantine",
        key="t/s/original",
        size_bytes=len(data),
        etag=client.etag_of[("quarantine", "t/s/original")],
    )


def test_compose_builds_source_plus_patches_with_the_digest_from_the_start() -> None:
    original = random.Random(1).randbytes(3 * PART + 777)
    client = S3StandIn({("quarantine", "t/s/original"): original})
    patches = [(100, b"\x00" * 50), (2 * PART + 3, b"scrubbed"), (len(original), b"appended")]
    expected = bytearray(original)
    for offset, data in patches:
        expected[offset : offset + len(data)] = data
    digest = hashlib.sha256(bytes(expected)).hexdigest()

    stored = _store(client).compose(
        "deidentified",
        "t/s/slide.svs",
        _source(client),
        patches,
        sha256=digest,
        content_type="image/tiff",
        part_size_bytes=PART,
    )
    assert client.objects[("deidentified", "t/s/slide.svs")] == bytes(expected)
    assert (stored.size_bytes, stored.etag, stored.sha256) == (len(expected), "composed", digest)
    assert client.calls[0] == f"create:['{digest}']:image/tiff"  # the digest at creation
    assert client.calls.count("copy") == 1 and client.calls.count("upload") == 3
    assert client.calls[-1] == "complete"  # no stamping copy after it


def test_a_failed_part_aborts_and_nothing_appears() -> None:
    original = random.Random(2).randbytes(2 * PART)
    client = S3StandIn({("quarantine", "t/s/original"): original})
    stale = _source(client).model_copy(update={"etag": "an-older-version"})
    with pytest.raises(Exception, match="precondition"):
        _store(client).compose(
            "deidentified",
            "t/s/slide.svs",
            stale,
            [(PART + 1, b"x")],
            sha256="0" * 64,
            part_size_bytes=PART,
        )
    assert ("deidentified", "t/s/slide.svs") not in client.objects
    assert client.aborted == ["u0"] and "complete" not in client.calls


def test_compose_refuses_a_malformed_digest() -> None:
    client = S3StandIn({("quarantine", "t/s/original"): b"abc"})
    with pytest.raises(ValueError, match="sha256"):
        _store(client).compose("deidentified", "t/s/slide.svs", _source(client), [], sha256="ABC")
    assert client.calls == []

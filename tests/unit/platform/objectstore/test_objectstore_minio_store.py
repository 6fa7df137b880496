"""MinioObjectStore logic that needs no server, against a recording stand-in for the SDK."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
import urllib3
from minio.commonconfig import REPLACE, CopySource
from minio.error import S3Error

from slidestream_platform.errors import RetryableError
from slidestream_platform.objectstore import MinioObjectStore, ObjectStoreSettings
from slidestream_platform.objectstore.parts import S3_MIN_PART_SIZE_BYTES

PART_BYTES = S3_MIN_PART_SIZE_BYTES


class Result:
    def __init__(self, etag: str) -> None:
        self.etag = etag


class RecordingClient:
    """Records SDK calls; reads put bodies the way the SDK does (``read(size)`` until EOF)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.buckets: set[str] = set()
        self.race_on_create = False

    def put_object(self, bucket: str, key: str, data: Any, length: int, **kw: Any) -> Result:
        body = b""
        while chunk := data.read(PART_BYTES + 1):
            body += chunk
        self.calls.append(("put_object", {"length": length, "body": body, **kw}))
        return Result('"upload-etag-2"' if length == -1 or length > PART_BYTES else '"single"')

    def copy_object(self, bucket: str, key: str, source: CopySource, **kw: Any) -> Result:
        self.calls.append(("copy_object", {"bucket": bucket, "key": key, "source": source, **kw}))
        return Result('"stamped"')

    def bucket_exists(self, name: str) -> bool:
        return name in self.buckets

    def make_bucket(self, name: str, location: str | None = None) -> None:
        if self.race_on_create:
            response = urllib3.HTTPResponse(body=b"", status=409)
            raise S3Error(response, "BucketAlreadyOwnedByYou", "exists", name, "r", "h")
        self.buckets.add(name)
        self.calls.append(("make_bucket", {"name": name, "location": location}))


def make_store(client: RecordingClient) -> MinioObjectStore:
    settings = ObjectStoreSettings.model_validate(
        {
            "endpoint": "http://127.0.0.1:9000",
            "access_key": "a",
            "secret_key": "s",
            "multipart_part_size_bytes": PART_BYTES,
        }
    )
    return MinioObjectStore(settings, client=client)  # type: ignore[arg-type]


@pytest.mark.parametrize("length_known", [True, False])
def test_small_objects_go_up_in_one_request_with_the_digest(length_known: bool) -> None:
    client = RecordingClient()
    data = b"thumbnail bytes"
    ref = make_store(client).put_stream(
        "derived",
        "t/s/thumb.png",
        io.BytesIO(data),
        len(data) if length_known else None,
        content_type="image/png",
        metadata={"kind": "thumbnail"},
    )
    assert [name for name, _ in client.calls] == ["put_object"]
    call = client.calls[0][1]
    assert call["body"] == data
    assert call["metadata"]["sha256"] == hashlib.sha256(data).hexdigest() == ref.sha256
    assert call["metadata"]["kind"] == "thumbnail"
    assert call["content_type"] == "image/png"
    assert ref.etag == "single"


@pytest.mark.parametrize("length_known", [True, False])
def test_large_objects_are_stamped_by_a_conditional_self_copy(length_known: bool) -> None:
    client = RecordingClient()
    data = bytes(range(256)) * (3 * PART_BYTES // 256)  # three parts
    ref = make_store(client).put_stream(
        "converted", "t/s/slide.dcm", io.BytesIO(data), len(data) if length_known else None
    )
    assert [name for name, _ in client.calls] == ["put_object", "copy_object"]
    put, copy = client.calls[0][1], client.calls[1][1]
    assert put["body"] == data  # the read-ahead was replayed, nothing lost or doubled
    assert put["length"] == (len(data) if length_known else -1)
    assert put["part_size"] == PART_BYTES
    assert "sha256" not in put["metadata"]  # unknown until the last byte is read
    source: CopySource = copy["source"]
    assert (source.bucket_name, source.object_name) == ("converted", "t/s/slide.dcm")
    assert source.match_etag == "upload-etag-2"  # never stamp someone else's object
    assert copy["metadata_directive"] == REPLACE
    assert copy["metadata"]["sha256"] == hashlib.sha256(data).hexdigest() == ref.sha256
    assert ref.size_bytes == len(data)
    assert ref.etag == "stamped"


def test_bucket_bootstrap_skips_existing_and_survives_a_creation_race() -> None:
    client = RecordingClient()
    store = make_store(client)
    store.ensure_buckets(["quarantine", "derived"])
    store.ensure_buckets(["quarantine", "derived"])
    assert [c for c, _ in client.calls] == ["make_bucket", "make_bucket"]
    assert client.calls[0][1]["location"] == "us-east-1"
    client.race_on_create = True
    store.ensure_buckets(["models"])  # another replica created it first: fine


class BrokenResponse:
    """A body whose connection drops after the first chunk."""

    def __init__(self) -> None:
        self.served = False
        self.closed = False
        self.released = False

    def readinto(self, buffer: memoryview) -> int:
        if self.served:
            raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")
        self.served = True
        buffer[:3] = b"abc"
        return 3

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


def test_a_connection_cut_mid_read_is_retryable_and_releases_the_connection() -> None:
    response = BrokenResponse()

    class Client(RecordingClient):
        def get_object(self, bucket: str, key: str, **kw: Any) -> BrokenResponse:
            return response

    store = make_store(Client())
    with (
        pytest.raises(RetryableError, match="read s3://converted/k"),
        store.open_stream("converted", "k") as stream,
    ):
        stream.read()
    assert response.closed
    assert response.released


def test_put_file_sets_the_digest_at_creation_without_a_stamping_copy(tmp_path: Path) -> None:
    client = RecordingClient()
    data = bytes(range(256)) * ((PART_BYTES * 2 + 1000) // 256)
    path = tmp_path / "slide.svs"
    path.write_bytes(data)
    ref = make_store(client).put_file("b", "k", path, content_type="image/tiff")
    assert [name for name, _ in client.calls] == ["put_object"]  # no copy_object afterwards
    call = client.calls[0][1]
    assert call["body"] == data and call["length"] == len(data)
    assert call["metadata"]["sha256"] == hashlib.sha256(data).hexdigest() == ref.sha256
    assert (ref.size_bytes, ref.etag) == (len(data), "upload-etag-2")


def test_put_file_of_one_part_is_a_single_put(tmp_path: Path) -> None:
    client = RecordingClient()
    path = tmp_path / "small.json"
    path.write_bytes(b"{}")
    ref = make_store(client).put_file("b", "k", path)
    assert [name for name, _ in client.calls] == ["put_object"]
    assert ref.sha256 == hashlib.sha256(b"{}").hexdigest()

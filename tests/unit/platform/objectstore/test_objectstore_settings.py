"""Settings validation and the argument checks that need no server."""

from __future__ import annotations

import io

import pytest
from pydantic import SecretStr, ValidationError

from slidestream_platform.errors import RetryableError
from slidestream_platform.objectstore import (
    DEFAULT_PART_SIZE_BYTES,
    MinioObjectStore,
    ObjectInfo,
    ObjectStore,
    ObjectStoreSettings,
    StoredObject,
)

SHA = "0" * 64


def settings(endpoint: str = "http://127.0.0.1:9000", **overrides: object) -> ObjectStoreSettings:
    return ObjectStoreSettings.model_validate(
        {"endpoint": endpoint, "access_key": "a", "secret_key": "s", **overrides}
    )


def test_defaults_and_derived_connection_values() -> None:
    s = settings()
    assert s.multipart_part_size_bytes == DEFAULT_PART_SIZE_BYTES == 64 * 1024 * 1024
    assert s.region == "us-east-1"
    assert not s.secure
    assert s.netloc == "127.0.0.1:9000"
    assert isinstance(s.secret_key, SecretStr)
    assert "s" not in repr(s.secret_key)


def test_https_endpoint_is_secure_and_gets_port_443() -> None:
    s = settings("https://s3.example.org")
    assert s.secure
    assert s.netloc == "s3.example.org:443"


@pytest.mark.parametrize(
    "bad",
    [
        {"endpoint": "http://host:9000/some/path"},
        {"endpoint": "ftp://host"},
        {"multipart_part_size_bytes": 1024},
        {"multipart_parallel_uploads": 0},
    ],
)
def test_invalid_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        settings(**bad)  # type: ignore[arg-type]


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(ValidationError):
        s.region = "eu-west-1"  # type: ignore[misc]


def test_minio_store_satisfies_the_port() -> None:
    assert isinstance(MinioObjectStore(settings()), ObjectStore)


@pytest.mark.parametrize(
    "metadata",
    [{"sha256": SHA}, {"Upper": "x"}, {"bad name": "x"}, {"ok": "caf\u00e9"}, {"ok": "a\nb"}],
)
def test_metadata_that_s3_cannot_carry_is_refused_before_any_request(
    metadata: dict[str, str],
) -> None:
    store = MinioObjectStore(settings("http://127.0.0.1:1"))  # nothing listens there
    with pytest.raises(ValueError, match="metadata"):
        store.put_stream("bucket", "key", io.BytesIO(b"x"), 1, metadata=metadata)


@pytest.mark.parametrize("expires_s", [0, -1, 7 * 24 * 3600 + 1])
def test_presign_expiry_limits(expires_s: int) -> None:
    store = MinioObjectStore(settings())
    with pytest.raises(ValueError, match="expires_s"):
        store.presign_get("bucket", "key", expires_s)
    with pytest.raises(ValueError, match="expires_s"):
        store.presign_put("bucket", "key", expires_s)


def test_presigning_is_local_and_signs_the_key() -> None:
    url = MinioObjectStore(settings()).presign_get("bucket", "t/s/a.tiff", 60)
    assert url.startswith("http://127.0.0.1:9000/bucket/t/s/a.tiff?")
    assert "X-Amz-Expires=60" in url


def test_an_unreachable_server_is_a_retryable_fault() -> None:
    store = MinioObjectStore(settings("http://127.0.0.1:1", http_retries=0))  # nothing listens
    with pytest.raises(RetryableError, match="s3://bucket/key"):
        store.stat("bucket", "key")
    with pytest.raises(RetryableError):
        store.put_stream("bucket", "key", io.BytesIO(b"abc"), 3)
    with pytest.raises(RetryableError), store.open_stream("bucket", "key"):
        pass


def test_empty_range_needs_no_server() -> None:
    store = MinioObjectStore(settings("http://127.0.0.1:1"))
    with store.open_stream("bucket", "key", offset=5, length=0) as stream:
        assert stream.read() == b""


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1)])
def test_negative_ranges_are_refused(offset: int, length: int | None) -> None:
    store = MinioObjectStore(settings())
    with pytest.raises(ValueError), store.open_stream("b", "k", offset=offset, length=length):
        pass


def test_info_to_ref_needs_a_digest() -> None:
    info = ObjectInfo(bucket="b", key="k", size_bytes=1, etag="e")
    with pytest.raises(ValueError, match="sha256"):
        info.to_ref()
    ref = info.model_copy(update={"sha256": SHA}).to_ref()
    assert ref == StoredObject(bucket="b", key="k", sha256=SHA, size_bytes=1, etag="e")


def test_stored_object_becomes_the_event_reference() -> None:
    ref = StoredObject(
        bucket="converted", key="t1/s1/slide.dcm", sha256=SHA, size_bytes=3, etag="e"
    )
    event_ref = ref.to_event_ref()
    assert event_ref.model_dump() == {
        "bucket": "converted",
        "key": "t1/s1/slide.dcm",
        "sha256": SHA,
        "size_bytes": 3,
    }


def test_object_ref_rejects_malformed_digests() -> None:
    with pytest.raises(ValidationError):
        StoredObject(bucket="b", key="k", sha256="ABC", size_bytes=1, etag="e")

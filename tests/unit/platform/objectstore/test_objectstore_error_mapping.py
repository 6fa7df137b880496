"""SDK and network exceptions become the platform's error classes."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from slidestream_platform.errors import (
    AccessError,
    ObjectNotFoundError,
    PoisonError,
    RetryableError,
    SlidestreamError,
)
from slidestream_platform.objectstore.error_mapping import is_not_found, map_s3_exception

#: urllib3 exceptions want the pool they came from; these tests have none.
NO_POOL: Any = None


def s3_error(code: str, status: int) -> S3Error:
    response = urllib3.HTTPResponse(body=b"", status=status)
    return S3Error(response, code, "message", "/bucket/key", "request-id", "host-id")


def mapped(exc: BaseException) -> SlidestreamError | None:
    return map_s3_exception(exc, operation="get", bucket="bucket", key="key")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, ObjectNotFoundError),
        ("NoSuchBucket", 404, ObjectNotFoundError),
        ("AccessDenied", 403, AccessError),
        ("InvalidAccessKeyId", 403, AccessError),
        ("SignatureDoesNotMatch", 403, AccessError),
        ("SlowDown", 503, RetryableError),
        ("InternalError", 500, RetryableError),
        ("RequestTimeout", 400, RetryableError),
        ("PreconditionFailed", 412, RetryableError),
        ("InvalidRange", 416, PoisonError),
        ("EntityTooLarge", 400, PoisonError),
        ("SomethingNew", 502, RetryableError),
        ("SomethingNew", 429, RetryableError),
        ("SomethingNew", 401, AccessError),
        ("SomethingNew", 404, ObjectNotFoundError),
        ("SomethingNew", 409, PoisonError),
    ],
)
def test_s3_error_codes_and_statuses(code: str, status: int, expected: type[Exception]) -> None:
    error = mapped(s3_error(code, status))
    assert type(error) is expected
    assert "s3://bucket/key" in str(error)


def test_object_not_found_is_poison() -> None:
    assert isinstance(mapped(s3_error("NoSuchKey", 404)), PoisonError)


@pytest.mark.parametrize(
    ("status", "expected"), [(500, RetryableError), (503, RetryableError), (403, AccessError)]
)
def test_non_xml_server_errors(status: int, expected: type[Exception]) -> None:
    assert type(mapped(ServerError("boom", status))) is expected


def test_garbage_responses_are_transient() -> None:
    assert type(mapped(InvalidResponseError(502, "text/html", "<html>"))) is RetryableError


@pytest.mark.parametrize(
    "exc",
    [
        urllib3.exceptions.MaxRetryError(
            NO_POOL, "/x", urllib3.exceptions.NewConnectionError(NO_POOL, "refused")
        ),
        urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead"),
        urllib3.exceptions.ReadTimeoutError(NO_POOL, "/x", "read timed out"),
        ConnectionResetError("reset by peer"),
        TimeoutError("timed out"),
    ],
)
def test_network_faults_are_transient(exc: BaseException) -> None:
    assert type(mapped(exc)) is RetryableError


def test_tls_failures_need_an_operator() -> None:
    exc = urllib3.exceptions.MaxRetryError(NO_POOL, "/x", urllib3.exceptions.SSLError("bad cert"))
    assert type(mapped(exc)) is AccessError


def test_platform_errors_pass_through_unchanged() -> None:
    original = PoisonError("already classified")
    assert mapped(original) is original


def test_bugs_are_not_mapped() -> None:
    assert mapped(KeyError("bug")) is None


def test_not_found_detection() -> None:
    assert is_not_found(s3_error("NoSuchKey", 404))
    assert is_not_found(s3_error("NoSuchBucket", 404))
    assert is_not_found(s3_error("", 404))
    assert not is_not_found(s3_error("AccessDenied", 403))
    assert not is_not_found(KeyError("x"))

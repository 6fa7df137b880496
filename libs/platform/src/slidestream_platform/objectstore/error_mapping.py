"""Map MinIO SDK and network exceptions onto the platform error hierarchy.

The delivery middleware decides retry or dead letter from the class alone, so the mapping is
the contract: transient faults (network, timeouts, 5xx, throttling) are ``RetryableError``;
credentials and permissions are ``AccessError``; a missing object is ``ObjectNotFoundError``;
any other 4xx means the request itself is wrong and is a ``PoisonError``. S3 error codes come
from the AWS S3 API reference ("Error responses"); MinIO and SeaweedFS reuse them.
"""

from __future__ import annotations

import ssl
from typing import Final

import urllib3.exceptions
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from slidestream_platform.errors import (
    AccessError,
    ObjectNotFoundError,
    PoisonError,
    RetryableError,
    SlidestreamError,
)

NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NoSuchVersion"})
ACCESS_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidSecurity",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
    }
)
RETRYABLE_CODES: Final = frozenset(
    {
        "BadDigest",  # body damaged in transit: resending it may succeed
        "IncompleteBody",
        "InternalError",
        "OperationAborted",  # a conflicting operation on the bucket is in progress
        "PreconditionFailed",  # the object changed under a conditional request; re-read it
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "XAmzContentSHA256Mismatch",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",  # operators add capacity; the message itself is fine
    }
)
#: HTTP statuses that signal a transient condition (RFC 9110: 408, 429 and the 5xx class).
_RETRYABLE_STATUSES: Final = frozenset({408, 429})
UNAVAILABLE_CODES: Final = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
    }
)
"""The retryable codes that describe the store, not the request: down, overloaded or full. Work
waits for as long as they last (:func:`is_store_unavailable`)."""


def _describe(operation: str, bucket: str, key: str | None) -> str:
    target = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
    return f"{operation} {target}"


def _by_status(status: int, what: str) -> SlidestreamError:
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return RetryableError(f"{what}: HTTP {status}")
    if status in (401, 403):
        return AccessError(f"{what}: HTTP {status}")
    if status == 404:
        return ObjectNotFoundError(f"{what}: not found")
    return PoisonError(f"{what}: HTTP {status}")


def _s3_status(error: S3Error) -> int:
    response = getattr(error, "response", None)
    status = getattr(response, "status", None)
    return status if isinstance(status, int) else 0


def map_s3_exception(
    exc: BaseException, *, operation: str, bucket: str, key: str | None = None
) -> SlidestreamError | None:
    """The platform error for an SDK/network exception, or ``None`` if it is not one of those.

    ``None`` leaves the caller to re-raise the original (a bug stays a bug).
    """
    what = _describe(operation, bucket, key)
    if isinstance(exc, SlidestreamError):
        return exc
    if isinstance(exc, S3Error):
        code = exc.code or ""
        detail = f"{what}: {code} ({exc.message})"
        if code in NOT_FOUND_CODES:
            return ObjectNotFoundError(detail)
        if code in ACCESS_CODES:
            return AccessError(detail)
        if code in RETRYABLE_CODES:
            return RetryableError(detail)
        status = _s3_status(exc)
        if status:
            mapped = _by_status(status, what)
            return type(mapped)(f"{detail}: HTTP {status}")
        return PoisonError(detail)
    if isinstance(exc, ServerError):
        return _by_status(exc.status_code, what)
    if isinstance(exc, InvalidResponseError):
        # A non-S3 body (a proxy's error page, a server still starting): transient.
        return RetryableError(f"{what}: {exc}")
    if isinstance(exc, MinioException):
        return PoisonError(f"{what}: {exc}")
    if isinstance(exc, urllib3.exceptions.HTTPError):
        reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
        if isinstance(reason, urllib3.exceptions.SSLError | ssl.SSLError):
            # A certificate that does not verify will not start verifying on retry.
            return AccessError(f"{what}: TLS failure: {reason}")
        return RetryableError(f"{what}: {exc}")
    if isinstance(exc, OSError):
        # Connection resets, refused connections, socket timeouts (ConnectionError, TimeoutError).
        return RetryableError(f"{what}: {exc}")
    return None


def is_store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, an SDK or network exception, says the store cannot serve anyone now:
    unreachable, answering 5xx or 429, throttling, full. A TLS failure is no outage (it is
    :class:`AccessError`), nor is a request the store refused."""
    if isinstance(exc, S3Error):
        status = _s3_status(exc)
        return (exc.code or "") in UNAVAILABLE_CODES or status >= 500 or status == 429
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, InvalidResponseError):
        return True
    if isinstance(exc, urllib3.exceptions.HTTPError):
        reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
        return not isinstance(reason, urllib3.exceptions.SSLError | ssl.SSLError)
    return False


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says the object (or its bucket) does not exist."""
    if isinstance(exc, S3Error):
        return (exc.code or "") in NOT_FOUND_CODES or _s3_status(exc) == 404
    return isinstance(exc, ServerError) and exc.status_code == 404

"""What can go wrong when talking to slidestream, as exceptions a caller can tell apart.

Messages never contain the token: the server's own ``message`` is shown where it sent one.
"""

from __future__ import annotations

import json

import httpx

from slidestream_modelrepo import FieldProblem


class SlidestreamError(Exception):
    """Base class of every error raised by the slidestream client."""

    slide_id: str | None = None
    """The slide concerned, when the server had already assigned one."""


class ApiConnectionError(SlidestreamError):
    """The server could not be reached or did not answer in time."""


class ApiError(SlidestreamError):
    """The server answered with an error status."""

    def __init__(
        self, status_code: int, reason: str, message: str, *, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason
        self.message = message
        self.field = field
        """The request parameter or search field the server named as the cause, if any."""


class AuthenticationError(ApiError):
    """401: the token is unknown or revoked."""


class NotFoundError(ApiError):
    """404: no such slide, upload or batch (or it belongs to another tenant)."""


class UploadRefusedError(ApiError):
    """The server refused to create the upload (tus creation answered 400/413 with a reason)."""


class ManifestRefusedError(ApiError):
    """The server refused the batch manifest (400 with the offending row in the message)."""


class PermissionDeniedError(ApiError):
    """403: the token is valid but lacks the scope (pushing a model needs ``models:write``)."""


class ModelRefusedError(ApiError):
    """422 from the models API: the model (card, config, files) or its canary request was
    refused; ``problems`` says why, field by field, when the server named fields."""

    def __init__(
        self, status_code: int, reason: str, message: str, problems: tuple[FieldProblem, ...]
    ) -> None:
        super().__init__(status_code, reason, message)
        self.problems = problems


class SearchRefusedError(ApiError):
    """400/422 from the search API: a filter, facet, sort, cursor or similarity query the server
    refused (an unknown field, a value of the wrong type, a model it never indexed); ``field``
    names the culprit."""


class RateLimitedError(ApiError):
    """429: too many requests for this token or from this address; ``retry_after_s`` is the
    server's ``Retry-After`` (the SDK has already waited and retried a few times)."""

    def __init__(self, status_code: int, reason: str, message: str, retry_after_s: int) -> None:
        super().__init__(status_code, reason, message)
        self.retry_after_s = retry_after_s


class ServiceUnavailableError(ApiError):
    """503: the server is up but cannot answer now (its database or index is unreachable)."""


class VersionExistsError(ApiError):
    """409: this model version was pushed before; versions are immutable (push a new one)."""


class UploadFailedError(SlidestreamError):
    """The bytes could not be sent (after retries); rerunning resumes from the server's offset."""


class UploadCancelledError(UploadFailedError):
    """The upload was interrupted on request; rerunning resumes it."""


class UploadRejectedError(SlidestreamError):
    """All bytes arrived but the server rejected the upload (e.g. the sha256 did not match)."""

    def __init__(self, slide_id: str, reason: str | None, detail: str | None) -> None:
        super().__init__(detail or reason or "the server rejected the upload")
        self.slide_id: str | None = slide_id
        self.reason = reason
        self.detail = detail


def _error_body(response: httpx.Response) -> tuple[str, str, str | None]:
    """The ``{"reason", "message", "field"}`` body of an error response (``field`` only where
    the server named one), or a fallback from the status."""
    fallback_reason = f"http-{response.status_code}"
    fallback_message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    try:
        body = json.loads(response.content) if response.content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        return fallback_reason, text[:500] if text else fallback_message, None
    if isinstance(body, dict) and isinstance(body.get("detail"), dict):
        body = body["detail"]  # FastAPI's default shape for HTTPException(detail={...})
    if isinstance(body, dict) and isinstance(body.get("detail"), list) and body["detail"]:
        return _validation_problems(body["detail"], fallback_reason, fallback_message)
    if isinstance(body, dict):
        reason = body.get("reason") or body.get("error")  # the models API says "error"
        message = body.get("message") or body.get("detail")
        field = body.get("field")
        return (
            str(reason) if reason else fallback_reason,
            str(message) if message else fallback_message,
            str(field) if field else None,
        )
    return fallback_reason, fallback_message, None


def _validation_problems(
    problems: list[object], fallback_reason: str, fallback_message: str
) -> tuple[str, str, str | None]:
    """FastAPI's own 422 (``{"detail": [{"loc": ["query", "limit"], "msg": ...}]}``), before any
    handler ran: the first problem's parameter is the field, every message is kept."""
    items = [item for item in problems if isinstance(item, dict) and item.get("msg")]
    if not items:
        return fallback_reason, fallback_message, None
    location = [str(part) for part in items[0].get("loc", ())]
    field = ".".join(location[1:] or location) or None  # without "query", "body"...
    message = "; ".join(str(item["msg"]) for item in items)
    return "invalid-request", message, field


def retry_after_s(response: httpx.Response, default_s: int = 1) -> int:
    """The ``Retry-After`` of a response in whole seconds (the delay form; RFC 9110 §10.2.3),
    ``default_s`` when absent or not a number."""
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else default_s


def error_from_response(
    response: httpx.Response, *, refused: type[ApiError] = ApiError
) -> ApiError:
    """The exception for an error response; ``refused`` is the class used for 400/413/422."""
    reason, message, field = _error_body(response)
    status = response.status_code
    if status == httpx.codes.UNAUTHORIZED:
        return AuthenticationError(status, reason, f"the server refused the token: {message}")
    if status == httpx.codes.NOT_FOUND:
        return NotFoundError(status, reason, message, field=field)
    if status in {
        httpx.codes.BAD_REQUEST,
        httpx.codes.FORBIDDEN,
        httpx.codes.REQUEST_ENTITY_TOO_LARGE,
        httpx.codes.UNPROCESSABLE_ENTITY,
    }:
        return refused(status, reason, message, field=field)
    if status == httpx.codes.SERVICE_UNAVAILABLE:
        return ServiceUnavailableError(status, reason, message)
    if status == httpx.codes.TOO_MANY_REQUESTS:
        return RateLimitedError(status, reason, message, retry_after_s(response))
    return ApiError(status, reason, message, field=field)


def problems_from_response(response: httpx.Response) -> tuple[FieldProblem, ...]:
    """The ``problems`` list of an error body (``[{"field", "message"}]``); empty if none."""
    try:
        body = json.loads(response.content) if response.content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ()
    items = body.get("problems") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return ()
    return tuple(
        FieldProblem(str(item.get("field", "")), str(item.get("message", "")))
        for item in items
        if isinstance(item, dict)
    )

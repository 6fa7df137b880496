"""MinIO SDK calls and response reads whose exceptions surface as platform errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from slidestream_platform.errors import SlidestreamError
from slidestream_platform.objectstore.error_mapping import is_not_found, map_s3_exception


class MissingObjectError(Exception):
    """Internal signal: the object is missing and the caller wants ``None``."""


@contextmanager
def translated(
    operation: str, bucket: str, key: str | None, *, not_found_returns: bool = False
) -> Iterator[None]:
    """Re-raise SDK exceptions of the block as platform errors naming ``s3://bucket/key``.

    With ``not_found_returns`` a missing object raises :class:`MissingObjectError` instead.
    """
    try:
        yield
    except SlidestreamError:
        raise
    except Exception as exc:
        if not_found_returns and is_not_found(exc):
            raise MissingObjectError from exc
        mapped = map_s3_exception(exc, operation=operation, bucket=bucket, key=key)
        if mapped is None:
            raise
        _raise(mapped, exc)


def _raise(error: SlidestreamError, cause: BaseException) -> NoReturn:
    raise error from cause


class ResponseReader(io.RawIOBase):
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

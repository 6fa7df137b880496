"""Polling, once every byte is sent, for the server's verdict on an upload."""

from __future__ import annotations

import time
from collections.abc import Callable

from slidestream_client.errors import ApiConnectionError, NotFoundError
from slidestream_client.models import UploadStatus

MAX_POLL_INTERVAL_S = 5.0
_FIRST_POLL_INTERVAL_S = 0.25


def poll_upload_verdict(
    upload_status: Callable[[str], UploadStatus], slide_id: str, timeout_s: float
) -> UploadStatus | None:
    """The upload's final status; when ``timeout_s`` passes first, the last status seen
    (``None`` if the server never had one)."""
    deadline = time.monotonic() + timeout_s
    interval_s = _FIRST_POLL_INTERVAL_S
    status: UploadStatus | None = None
    while True:
        try:
            status = upload_status(slide_id)
        except (NotFoundError, ApiConnectionError):
            status = None  # the status may lag the last PATCH by a moment
        if status is not None and status.state.is_final:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
        interval_s = min(interval_s * 1.5, MAX_POLL_INTERVAL_S)
    return status

"""The ``minio.Minio`` client a store talks through, on a connection pool of our own."""

from __future__ import annotations

from typing import Final

import certifi
import urllib3
from minio import Minio
from urllib3.util import Retry, Timeout

from slidestream_platform.objectstore.settings import ObjectStoreSettings

#: Backoff base of in-call retries (the SDK's default; S3 requests are idempotent).
_HTTP_RETRY_BACKOFF_S: Final = 0.2
_HTTP_POOL_SIZE: Final = 16


def make_minio_client(settings: ObjectStoreSettings) -> Minio:
    """A client for ``settings``' server with their timeouts, retries and CA bundle."""
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

"""The platform's buckets, created in each S3 server of the stack."""

from __future__ import annotations

from typing import Final

from minio import Minio

S3_REGION: Final = "us-east-1"
MODELS_BUCKET: Final = "models"
"""Triton's model repository; Triton reads it over S3 itself, so it must exist before Triton
starts (a missing bucket stops ``tritonserver`` at start-up)."""
BUCKETS: Final[tuple[str, ...]] = (
    "quarantine",
    "deidentified",
    "converted",
    "derived",
    MODELS_BUCKET,
)
"""Raw uploads, de-identified slides, converted slides, derived artefacts, models
(docs/architecture.md, "Storage")."""


def s3_client(host_port: str, access_key: str, secret_key: str) -> Minio:
    return Minio(
        host_port, access_key=access_key, secret_key=secret_key, secure=False, region=S3_REGION
    )


def ensure_buckets(client: Minio, buckets: tuple[str, ...] = BUCKETS) -> None:
    for bucket in buckets:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)

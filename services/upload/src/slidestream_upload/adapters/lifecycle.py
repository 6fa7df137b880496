"""Quarantine bucket lifecycle: S3 aborts multipart uploads that nobody finished.

tusd's S3 store keeps an abandoned upload as an incomplete multipart upload; the reconciliation
loop terminates those it knows of after the TTL, and this rule (S3 API
``AbortIncompleteMultipartUpload``) catches the rest — e.g. uploads whose creation hook never
reached the database.
"""

from __future__ import annotations

from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import AbortIncompleteMultipartUpload, LifecycleConfig, Rule

from slidestream_upload.settings import UploadSettings

RULE_ID = "slidestream-abort-incomplete-uploads"


def abort_incomplete_multipart_uploads(settings: UploadSettings, *, days: int) -> None:
    endpoint = settings.s3_endpoint.split("://", 1)[-1].rstrip("/")
    client = Minio(
        endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        region=settings.s3_region,
        secure=settings.s3_endpoint.startswith("https://"),
    )
    rule = Rule(
        ENABLED,
        rule_filter=Filter(prefix=""),
        rule_id=RULE_ID,
        abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
            days_after_initiation=days
        ),
    )
    client.set_bucket_lifecycle(settings.quarantine_bucket, LifecycleConfig([rule]))

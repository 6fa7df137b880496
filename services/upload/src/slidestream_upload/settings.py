"""The upload service's settings (one frozen class; secrets from files via the base)."""

from __future__ import annotations

import secrets

from pydantic import Field, SecretStr

from slidestream_platform.settings import ServiceSettings

GIB = 1024**3


class UploadSettings(ServiceSettings):
    service_name: str = "upload"
    http_port: int = 8090

    tus_url: str = "http://127.0.0.1:11080/files/"
    """The tus endpoint partners upload to (tusd), as they reach it."""
    tusd_internal_url: str | None = None
    """How this service reaches tusd for terminations, when it differs from ``tus_url``."""
    tusd_internal_token: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32))
    )
    """Lets this service terminate expired uploads through tusd's pre-terminate hook. Set it from
    a Secret when running several replicas (any replica may receive the hook)."""
    quarantine_bucket: str = "quarantine"
    max_upload_bytes: int = Field(default=20 * GIB, gt=0)
    default_tenant_quota_bytes: int = Field(default=10 * 1024 * GIB, gt=0)
    upload_ttl_s: float = Field(default=24 * 3600, gt=0)
    """An upload not finished within this time is abandoned: terminated and removed."""
    reconcile_interval_s: float = Field(default=30, gt=0)
    """How often unfinished uploads are checked (missed post-finish hooks, expiries)."""
    finalize_lease_s: float = Field(default=30, gt=0)
    """A finalizer holds its upload this long and renews the hold while it works; a replica that
    died mid-way loses it after at most this long, and another replica takes over."""
    max_verify_attempts: int = Field(default=5, ge=1)
    """Verifications of one complete upload that may fail (an error, or a process killed
    mid-way) before it is refused as ``upload-verification-failed`` instead of retried forever
    by the reconciler."""
    multipart_abort_after_days: int = Field(default=2, ge=1)
    """Bucket lifecycle: incomplete multipart uploads in quarantine are aborted after this."""

    # Partner API rate limits (token buckets, per replica: see domain/rate_limits.py). A request
    # over either limit is answered 429 with Retry-After.
    rate_limit_token_per_s: float = Field(default=10.0, gt=0)
    """Requests per second one token may sustain on the partner API (``/v1``)."""
    rate_limit_token_burst: int = Field(default=50, ge=1)
    """Requests one token may send back to back before the sustained rate applies."""
    rate_limit_address_per_s: float = Field(default=20.0, gt=0)
    """Requests per second one client address may sustain, whatever the token (behind a proxy,
    the address uvicorn sees: set ``FORWARDED_ALLOW_IPS`` to the proxy's so it reads
    ``X-Forwarded-For``, or every partner shares the proxy's bucket)."""
    rate_limit_address_burst: int = Field(default=100, ge=1)
    """Requests one client address may send back to back."""

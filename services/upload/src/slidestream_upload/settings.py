"""The upload service's settings (one frozen class; secrets from files via the base)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Self

from pydantic import Field, SecretBytes, SecretStr, model_validator

from slidestream_platform.settings import SECRETS_DIR, ServiceSettings, read_secret_file

GIB = 1024**3
MIN_HOOKS_SECRET_BYTES = 32
"""The shared hooks secret is at least 32 characters: 190 bits as the chart's 32 letters and
digits, 128 as the local stack's 32 hex digits (it writes 64)."""


class UploadSettings(ServiceSettings):
    service_name: str = "upload"
    http_port: int = 8090

    hooks_port: int = Field(default=8190, ge=1, le=65535)
    """tusd's hooks are served on this port only, never on ``HTTP_PORT`` (the partners'): the
    chart's NetworkPolicy admits tusd alone to it."""
    tusd_hooks_secret_file: Path = SECRETS_DIR / "tusd_hooks_secret"
    """The secret tusd sends with every hook (the password of the hook URL's HTTP Basic user).
    One Secret for every replica and tusd; read at start (:meth:`tusd_hooks_secret`)."""
    tus_url: str = "http://127.0.0.1:11080/files/"
    """The tus endpoint partners upload to (tusd), as they reach it."""
    tusd_internal_url: str | None = None
    """How this service reaches tusd for terminations, when it differs from ``tus_url``."""
    tusd_internal_token: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32))
    )
    """Lets this service terminate expired uploads through tusd's pre-terminate hook. Several
    replicas need one value (any replica may receive the hook): the chart sets it from the same
    Secret as the hooks secret (file ``tusd_internal_token`` under the secrets directory)."""
    quarantine_bucket: str = "quarantine"
    max_upload_bytes: int = Field(default=20 * GIB, gt=0)
    require_declared_sha256: bool = True
    """Refuse (400 ``checksum-required``) an upload whose ``Upload-Metadata`` declares no sha256:
    the complete bytes are verified against the partner's own digest, never only against what
    arrived. The CLI always declares it; turn off only for a tus client that cannot."""
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

    @model_validator(mode="after")
    def _hooks_have_their_own_port(self) -> Self:
        if self.hooks_port == self.http_port:
            raise ValueError(f"HOOKS_PORT must differ from HTTP_PORT ({self.http_port})")
        return self

    def tusd_hooks_secret(self) -> SecretBytes:
        """The hooks secret, from :attr:`tusd_hooks_secret_file` (raises SecretFileError)."""
        return read_secret_file(self.tusd_hooks_secret_file, min_bytes=MIN_HOOKS_SECRET_BYTES)

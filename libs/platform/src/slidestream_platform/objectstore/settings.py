"""Connection settings of the object store (composed into a service's settings by the base)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator

from slidestream_platform.objectstore.parts import (
    DEFAULT_PART_SIZE_BYTES,
    S3_MAX_PART_SIZE_BYTES,
    S3_MIN_PART_SIZE_BYTES,
)


class ObjectStoreSettings(BaseModel):
    """Where the S3-compatible server is and how to talk to it.

    Memory per concurrent upload is about ``(multipart_parallel_uploads + 2) x
    multipart_part_size_bytes`` (one part more for streams of unknown length): the SDK holds
    each part in memory while it is sent, plus the part being read. Measured with the
    defaults: 250-320 MiB peak RSS whatever the object size.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``http://host:port`` or ``https://host:port``; TLS follows the scheme.
    endpoint: AnyHttpUrl
    access_key: str
    secret_key: SecretStr
    region: str = "us-east-1"
    multipart_part_size_bytes: int = Field(
        default=DEFAULT_PART_SIZE_BYTES, ge=S3_MIN_PART_SIZE_BYTES, le=S3_MAX_PART_SIZE_BYTES
    )
    multipart_parallel_uploads: int = Field(default=2, ge=1, le=16)
    #: Fail fast when the server is unreachable; the retry middleware decides what comes next.
    connect_timeout_s: float = Field(default=10.0, gt=0)
    #: Longest silence while waiting for a response or the next body bytes.
    read_timeout_s: float = Field(default=120.0, gt=0)
    #: Retries of one request on connection faults and 500/502/503/504, with exponential backoff
    #: (0.2 s, 0.4 s...), before the fault surfaces as ``RetryableError``.
    http_retries: int = Field(default=5, ge=0, le=20)
    #: CA bundle for TLS endpoints; ``None`` uses certifi's bundle.
    ca_bundle_path: Path | None = None

    @field_validator("endpoint")
    @classmethod
    def _no_path(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        # The SDK addresses buckets by path under the endpoint root; a base path is unsupported.
        if value.path not in (None, "", "/") or value.query or value.fragment:
            msg = f"endpoint must be scheme://host[:port] only, got {value}"
            raise ValueError(msg)
        return value

    @property
    def secure(self) -> bool:
        """Whether to use TLS (the endpoint's scheme is https)."""
        return self.endpoint.scheme == "https"

    @property
    def netloc(self) -> str:
        """``host:port`` as the SDK expects it."""
        default_port = 443 if self.secure else 80
        host = self.endpoint.host or ""
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # IPv6 literal (RFC 3986 section 3.2.2)
        return f"{host}:{self.endpoint.port or default_port}"

"""The settings base every service's one settings class derives from.

Configuration comes from the environment (the names in ``.local/stack.env`` and in the Helm chart's
values: ``KAFKA_BOOTSTRAP``, ``S3_ENDPOINT``, ``DATABASE_URL``...) and secrets from files: on
Kubernetes a Secret mounted at :data:`SECRETS_DIR` holds one file per field (``s3_secret_key``),
which wins over nothing but an explicit environment variable. Settings are frozen: a service reads
them once, at start, in ``main.py``.

A secret that the local stack must also give a service (which never puts secrets in an
environment) is a ``*_file`` path setting instead, read by :func:`read_secret_file`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretBytes, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from slidestream_platform.db import DatabaseSettings
from slidestream_platform.objectstore.settings import ObjectStoreSettings

SECRETS_DIR = Path("/run/secrets/slidestream")
"""Where Kubernetes mounts the service's Secret (charts/slidestream: ``secretMounts``)."""
MAX_SECRET_FILE_BYTES = 4096
"""A secret file larger than this is a misconfiguration (a wrong path), not a secret."""


class SecretFileError(ValueError):
    """A secret file is missing, unreadable, too short or too long (the message never holds its
    bytes)."""


def read_secret_file(path: Path, *, min_bytes: int = 1) -> SecretBytes:
    """The bytes of a secret file without its trailing newline, wrapped so that
    ``repr``/``str``/dumps show ``**********``; raises :class:`SecretFileError`."""
    try:
        raw = path.read_bytes()[: MAX_SECRET_FILE_BYTES + 1]
    except OSError as error:
        raise SecretFileError(f"cannot read the secret file {path}") from error
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(f"{path} is larger than {MAX_SECRET_FILE_BYTES} bytes: not a secret")
    secret = raw.rstrip(b"\r\n")
    if len(secret) < min_bytes:
        raise SecretFileError(f"{path} holds fewer than {min_bytes} bytes")
    return SecretBytes(secret)


class ServiceSettings(BaseSettings):
    """Fields every service has. A service subclasses this once and adds its own fields."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        secrets_dir=None,
    )

    service_name: str = Field(description="Consumer group, dead-letter topic and metrics label.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path(".local/data")

    kafka_bootstrap: str = "127.0.0.1:19092"
    """``host:port`` of one broker or several, comma-separated (Kafka's convention): the client
    bootstraps from the first that answers (:attr:`kafka_bootstrap_servers`)."""
    kafka_consumer_group: str | None = None
    """Defaults to ``service_name``; override to run a second, independent copy of a service."""
    kafka_auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """A new consumer group starts from the beginning: no slide uploaded before it is skipped."""
    kafka_max_attempts: int = Field(default=5, ge=1)
    """Failed attempts at one message before it is dead-lettered: transient faults, bugs and
    deliveries that ended with the process (counted in the service's table, so restarts do not
    reset them). A dependency that is down counts none: the message waits for it."""
    kafka_retry_backoff_initial_s: float = Field(default=0.5, gt=0)
    kafka_retry_backoff_max_s: float = Field(default=30.0, gt=0)
    """The cap of the exponential backoff, also between the redeliveries of a message that
    waits for a dependency (below ``kafka_max_poll_interval_s``: the sleep holds the poll)."""
    kafka_max_poll_interval_s: float = Field(default=300.0, gt=0)
    kafka_liveness_margin_s: float = Field(default=60.0, ge=0)
    """``/healthz`` fails once a message has been handled this long past
    ``kafka_max_poll_interval_s`` without a poll: Kafka has evicted the member by then
    (:mod:`slidestream_platform.liveness`)."""

    s3_endpoint: str = "http://127.0.0.1:19000"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"

    database_url: str | None = None
    """PostgreSQL URL; unset means an embedded SQLite file under ``data_dir``."""

    otel_exporter_otlp_endpoint: str | None = None
    """OTLP/HTTP collector; unset keeps traces in-process (still propagated across Kafka)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        # Only a mounted Secret is read; a missing directory is the normal local case.
        if SECRETS_DIR.is_dir():
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=SECRETS_DIR))
        return tuple(sources)

    @property
    def kafka_bootstrap_servers(self) -> list[str]:
        """:attr:`kafka_bootstrap` as a list: FastStream takes one string as one address."""
        return [server.strip() for server in self.kafka_bootstrap.split(",") if server.strip()]

    @property
    def consumer_group(self) -> str:
        return self.kafka_consumer_group or self.service_name

    @property
    def liveness_stall_after_s(self) -> float:
        """Seconds a handling may go without a poll before ``/healthz`` fails."""
        return self.kafka_max_poll_interval_s + self.kafka_liveness_margin_s

    @property
    def object_store(self) -> ObjectStoreSettings:
        return ObjectStoreSettings(
            endpoint=self.s3_endpoint,
            access_key=self.s3_access_key,
            secret_key=self.s3_secret_key,
            region=self.s3_region,
        )

    @property
    def database(self) -> DatabaseSettings:
        return DatabaseSettings(url=self.database_url, data_dir=self.data_dir)

"""Configuration read from the environment (``SLIDESTREAM_API``, ``SLIDESTREAM_TOKEN``...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from slidestream_client.state import default_state_dir


class ClientSettings(BaseSettings):
    """Defaults of the CLI options; a command-line option always wins."""

    model_config = SettingsConfigDict(env_prefix="SLIDESTREAM_", frozen=True, extra="ignore")

    api: str | None = Field(default=None, description="Base URL of the upload API.")
    token: SecretStr | None = Field(
        default=None, description="The tenant's API token (never printed or logged)."
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where upload URLs and checksums are remembered to resume after a crash.",
    )

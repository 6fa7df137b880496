"""Configuration read from the environment (``SLIDESTREAM_API``, ``SLIDESTREAM_TOKEN``...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from slidestream_client.state import default_state_dir

DEFAULT_INFERENCE_API = "http://127.0.0.1:8095"
"""The local stack's inference service."""
DEFAULT_SEARCH_API = "http://127.0.0.1:8091"
"""The local stack's catalog service, which answers searches."""


class ClientSettings(BaseSettings):
    """Defaults of the CLI options; a command-line option always wins."""

    model_config = SettingsConfigDict(env_prefix="SLIDESTREAM_", frozen=True, extra="ignore")

    api: str | None = Field(default=None, description="Base URL of the upload API.")
    token: SecretStr | None = Field(
        default=None, description="The tenant's API token (never printed or logged)."
    )
    inference_api: str = Field(
        default=DEFAULT_INFERENCE_API,
        validation_alias=AliasChoices("INFERENCE_API", "SLIDESTREAM_INFERENCE_API"),
        description="Base URL of the models API (the inference service); env INFERENCE_API, "
        "the name .local/stack.env uses.",
    )
    search_api: str = Field(
        default=DEFAULT_SEARCH_API,
        validation_alias=AliasChoices("SEARCH_API", "SLIDESTREAM_SEARCH_API"),
        description="Base URL of the search API (the catalog service); env SEARCH_API, the name "
        ".local/stack.env uses.",
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where upload URLs and checksums are remembered to resume after a crash.",
    )

"""Configuration read from the environment (``SLIDESTREAM_API``, ``SLIDESTREAM_TOKEN``...), then
from the local stack's ``.local/stack.env`` when the CLI runs inside a checkout where `make up`
ran."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from slidestream_client.state import default_state_dir

STACK_ENV_FILE = Path(".local") / "stack.env"
"""Written by `slidestream stack up` at the checkout's root; it names ``UPLOAD_API``,
``SEARCH_API`` and ``INFERENCE_API``."""
DEFAULT_INFERENCE_API = "http://127.0.0.1:8095"
"""The local stack's inference service."""
DEFAULT_SEARCH_API = "http://127.0.0.1:8091"
"""The local stack's catalog service, which answers searches."""


class ClientSettings(BaseSettings):
    """Defaults of the CLI options; a command-line option always wins."""

    model_config = SettingsConfigDict(env_prefix="SLIDESTREAM_", frozen=True, extra="ignore")

    api: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLIDESTREAM_API", "UPLOAD_API"),
        description="Base URL of the upload API; env SLIDESTREAM_API, or UPLOAD_API, the name "
        ".local/stack.env uses.",
    )
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

    @classmethod
    def load(cls, start: Path | None = None) -> ClientSettings:
        """The environment's settings, completed by the local stack's ``stack.env`` if the
        working directory lies inside a checkout that has one (the environment wins)."""
        return cls(_env_file=find_stack_env(start or Path.cwd()))


def find_stack_env(start: Path) -> Path | None:
    """``.local/stack.env`` in ``start`` or the nearest directory above it that has one."""
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / STACK_ENV_FILE
        if candidate.is_file():
            return candidate
    return None

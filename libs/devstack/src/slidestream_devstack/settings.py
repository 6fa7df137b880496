"""What a developer may configure about the local stack, read from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from slidestream_contracts.topics import DEFAULT_PARTITIONS


class DevstackSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    home: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("SLIDESTREAM_HOME"),
        description="Repository root whose .local/ holds the stack; default: the git top level.",
    )
    kafka_topic_partitions: int = Field(
        default=DEFAULT_PARTITIONS,
        ge=1,
        validation_alias=AliasChoices("KAFKA_TOPIC_PARTITIONS"),
    )
    tusd_hooks_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLIDESTREAM_TUSD_HOOKS_URL"),
        description="HTTP hook receiver for tusd (the upload service), once it exists.",
    )

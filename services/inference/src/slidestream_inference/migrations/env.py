"""Alembic environment of the inference service."""

from slidestream_inference.adapters import route_tables  # noqa: F401 - its table in the metadata
from slidestream_inference.adapters.tables import metadata
from slidestream_platform.db import run_alembic_env

run_alembic_env(metadata)

"""Alembic environment of the convert service."""

from slidestream_convert.adapters.tables import metadata
from slidestream_platform.db import run_alembic_env

run_alembic_env(metadata)

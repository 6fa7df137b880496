"""Alembic environment of the deid service."""

from slidestream_deid.adapters.tables import metadata
from slidestream_platform.db import run_alembic_env

run_alembic_env(metadata)

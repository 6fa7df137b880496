"""Alembic environment of the catalog service."""

from slidestream_catalog.adapters.repository import metadata
from slidestream_platform.db import run_alembic_env

run_alembic_env(metadata)

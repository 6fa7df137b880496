"""Alembic environment of the catalog service."""

from slidestream_catalog.adapters import search_tables  # noqa: F401 - registers the search tables
from slidestream_catalog.adapters.repository import metadata
from slidestream_platform.db import run_alembic_env

run_alembic_env(metadata)

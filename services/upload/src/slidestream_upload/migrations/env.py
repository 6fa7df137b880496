"""Alembic environment of the upload service."""

from slidestream_platform.db import run_alembic_env
from slidestream_upload.adapters.tables import metadata

run_alembic_env(metadata)

"""Alembic environment of the qc service."""

from slidestream_platform.db import run_alembic_env
from slidestream_qc.adapters.tables import metadata

run_alembic_env(metadata)

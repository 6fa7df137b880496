"""Alembic environment of the inference service."""

import slidestream_inference.adapters.route_tables  # noqa: F401 - registers the models API's tables
from slidestream_inference.adapters.tables import metadata
from slidestream_platform.db import run_alembic_env

run_alembic_env(metadata)

"""Alembic environment of the test-only migrations fixture: one table, its own MetaData.

The table is declared here (not imported from a models module) because Alembic loads this file
by path, outside any importable package.
"""

import sqlalchemy as sa

from slidestream_platform.db import run_alembic_env

metadata = sa.MetaData()
widget = sa.Table(
    "widget",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(length=100), nullable=False, unique=True),
)

run_alembic_env(metadata)

"""models API: routes, backfills and model loads

Revision ID: 0002_routes
Revises: 0001_inference
Create Date: 2026-12-06 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_routes"
down_revision: str | Sequence[str] | None = "0001_inference"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inference_routes",
        sa.Column("model_name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("stain", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("min_qc", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=9), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "tenant", "project", "stain"),
    )
    op.create_table(
        "inference_backfills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=9), nullable=False),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inference_backfills", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inference_backfills_model_name"), ["model_name"], unique=False
        )
    op.create_table(
        "inference_model_loads",
        sa.Column("model_name", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("canary_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model_name"),
    )


def downgrade() -> None:
    op.drop_table("inference_model_loads")
    with op.batch_alter_table("inference_backfills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inference_backfills_model_name"))
    op.drop_table("inference_backfills")
    op.drop_table("inference_routes")

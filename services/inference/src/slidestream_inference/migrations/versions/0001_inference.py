"""inference slides (stand-in of the consume path's revision, for the models API's tests)

Revision ID: 0001_inference
Revises:
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_inference"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inference_slides",
        sa.Column("slide_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=True),
        sa.Column("stain", sa.String(length=64), nullable=True),
        sa.Column("qc_verdict", sa.String(length=8), nullable=True),
        sa.Column("qc_event", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slide_id"),
    )


def downgrade() -> None:
    op.drop_table("inference_slides")

"""slide fixes

A partner's fix of a failed slide (issue 18: ``slidestream slides fix``), one row per slide:
the facts supplied, and whether the fix request was published.

Revision ID: 0003_slide_fixes
Revises: 9fceeddc6946
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_slide_fixes"
down_revision: str | Sequence[str] | None = "9fceeddc6946"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upload_slide_fix",
        sa.Column("slide_id", sa.Uuid(), nullable=False),
        sa.Column("fix_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("facts_json", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("slide_id"),
    )
    op.create_index("ix_upload_slide_fix_tenant", "upload_slide_fix", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_upload_slide_fix_tenant", table_name="upload_slide_fix")
    op.drop_table("upload_slide_fix")

"""search projection: QC reasons on search_slide; catalog_slide retired

Revision ID: 0003_search_projection
Revises: 0002_search
Create Date: 2026-12-06 23:00:00

``search_slide`` is now the catalog's one projection (``GET /slides/{id}`` reads its live
generation), so ``catalog_slide`` goes; its rows are rebuilt from the topics by
``slidestream admin reindex``, never copied.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_search_projection"
down_revision: str | Sequence[str] | None = "0002_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy): the SQLite full-text triggers stay on the table.
    op.add_column(
        "search_slide",
        sa.Column(
            "qc_reasons_json",
            sqlmodel.sql.sqltypes.AutoString(length=4000),
            nullable=False,
            server_default="[]",
        ),
    )
    op.drop_index("ix_catalog_slide_tenant", table_name="catalog_slide")
    op.drop_index("ix_catalog_slide_state", table_name="catalog_slide")
    op.drop_table("catalog_slide")


def downgrade() -> None:
    op.create_table(
        "catalog_slide",
        sa.Column("slide_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transitions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("slide_id"),
    )
    op.create_index("ix_catalog_slide_state", "catalog_slide", ["state"])
    op.create_index("ix_catalog_slide_tenant", "catalog_slide", ["tenant"])
    # SQLite (3.35+) and PostgreSQL both drop a column in place; a batch copy would lose the
    # full-text triggers.
    op.execute("ALTER TABLE search_slide DROP COLUMN qc_reasons_json")

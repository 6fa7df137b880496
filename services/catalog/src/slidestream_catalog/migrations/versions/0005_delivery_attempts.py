"""catalog delivery attempts

Failed deliveries counted where a restart cannot reset them, so that a message that kills the
process is dead-lettered (slidestream_platform.attempts.DeliveryAttemptColumns). A row lives
while its message is being handled; none exist before this revision.

Revision ID: 0005_delivery_attempts
Revises: 0004_search_indexes
Create Date: 2026-12-07 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005_delivery_attempts"
down_revision: str | Sequence[str] | None = "0004_search_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_delivery_attempts",
        sa.Column("consumer_group", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "topic", "partition", "offset"),
    )


def downgrade() -> None:
    op.drop_table("catalog_delivery_attempts")

"""deid decisions announced once

deid_processed takes the columns of slidestream_platform.decisions.DecisionColumns: the mark
(partition and end offset of the first event's partition, taken before the decision is
stored), published_at, and decided_at (processed_at renamed); events_json as long as the
other services'.

Revision ID: dd9d4f3f03ba
Revises: 1e92a45b2aec
Create Date: 2026-12-06 16:46:52.265661
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "dd9d4f3f03ba"
down_revision: str | Sequence[str] | None = "1e92a45b2aec"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_MARK_OFFSET = 2**63 - 1
"""The mark of decisions stored before this revision, which had none. Past any partition's end,
so the "already published?" check answers no at once and a redelivery sends their events
again, with the same ids, as deid always did; from then on they are recorded as published."""


def upgrade() -> None:
    with op.batch_alter_table("deid_processed", schema=None) as batch_op:
        batch_op.alter_column(
            "processed_at",
            new_column_name="decided_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=False,
        )
        batch_op.add_column(
            sa.Column("mark_partition", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "mark_offset",
                sa.BigInteger(),
                nullable=False,
                server_default=str(LEGACY_MARK_OFFSET),
            )
        )
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column(
            "events_json",
            existing_type=sa.VARCHAR(length=200000),
            type_=sqlmodel.sql.sqltypes.AutoString(length=400000),
            existing_nullable=False,
        )
    # The defaults were for the rows already there; every new decision brings its own mark.
    with op.batch_alter_table("deid_processed", schema=None) as batch_op:
        batch_op.alter_column("mark_partition", existing_type=sa.Integer(), server_default=None)
        batch_op.alter_column("mark_offset", existing_type=sa.BigInteger(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("deid_processed", schema=None) as batch_op:
        batch_op.alter_column(
            "events_json",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=400000),
            type_=sa.VARCHAR(length=200000),
            existing_nullable=False,
        )
        batch_op.drop_column("published_at")
        batch_op.drop_column("mark_offset")
        batch_op.drop_column("mark_partition")
        batch_op.alter_column(
            "decided_at",
            new_column_name="processed_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=False,
        )

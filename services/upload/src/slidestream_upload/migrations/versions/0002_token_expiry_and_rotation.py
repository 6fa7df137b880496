"""token expiry and rotation

Revision ID: 0002_token_expiry_and_rotation
Revises: 9d9ed12ec41f
Create Date: 2026-12-12 10:00:00

``upload_token`` gains ``expires_at`` and ``rotated_to``, both nullable: tokens issued before
this revision keep no expiry (they end only when revoked), as documented in the README.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_token_expiry_and_rotation"
down_revision: str | Sequence[str] | None = "9d9ed12ec41f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN of nullable columns: no table copy on either backend.
    op.add_column(
        "upload_token", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("upload_token", sa.Column("rotated_to", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upload_token", schema=None) as batch_op:
        batch_op.drop_column("rotated_to")
        batch_op.drop_column("expires_at")

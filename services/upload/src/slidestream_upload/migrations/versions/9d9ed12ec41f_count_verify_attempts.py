"""count verify attempts

upload_upload.verify_attempts: verifications of the complete bytes begun, so that an upload
whose verification keeps failing (or killing the process) is refused after a bounded number
instead of being re-driven by the reconciler forever.

Revision ID: 9d9ed12ec41f
Revises: 995607cff458
Create Date: 2026-12-07 01:31:07.770480
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d9ed12ec41f"
down_revision: str | Sequence[str] | None = "995607cff458"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("upload_upload", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verify_attempts", sa.Integer(), nullable=False, server_default="0")
        )
    # The default was for the rows already there (none has begun a counted attempt); new rows
    # bring their own 0 from the model.
    with op.batch_alter_table("upload_upload", schema=None) as batch_op:
        batch_op.alter_column("verify_attempts", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("upload_upload", schema=None) as batch_op:
        batch_op.drop_column("verify_attempts")

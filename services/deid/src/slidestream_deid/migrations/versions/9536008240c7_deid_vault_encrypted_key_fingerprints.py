"""deid vault encrypted, key fingerprints

deid_key_fingerprint: the fingerprint of every pseudonym and vault key version ever used, so a
start with other bytes under a recorded version is refused.

deid_pseudonym_vault: original_sealed (AES-GCM of the original) and vault_key_id (the key that
sealed it). The plaintext original_id becomes nullable: rows already there keep it until the
service's next start, which has the vault key and seals them (a migration has no key). Rows are
unique by (tenant, role, pseudonym) instead of by the plaintext: the pseudonym is the keyed
digest of (tenant, role, original) under its version, so the two constraints are the same.

Revision ID: 9536008240c7
Revises: dd9d4f3f03ba
Create Date: 2026-12-07 01:31:03.994917
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "9536008240c7"
down_revision: str | Sequence[str] | None = "dd9d4f3f03ba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deid_key_fingerprint",
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("purpose", "key_version"),
    )
    with op.batch_alter_table("deid_pseudonym_vault", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("vault_key_id", sa.Integer(), nullable=True))
        batch_op.alter_column("original_id", existing_type=sa.VARCHAR(length=256), nullable=True)
        batch_op.drop_constraint("uq_deid_vault_id", type_="unique")
        batch_op.create_index(
            batch_op.f("ix_deid_pseudonym_vault_vault_key_id"), ["vault_key_id"], unique=False
        )
        batch_op.create_unique_constraint(
            "uq_deid_vault_pseudonym", ["tenant", "role", "pseudonym"]
        )


def downgrade() -> None:
    # The previous schema holds originals in plaintext, and a migration has no key to decrypt.
    sealed = op.get_bind().execute(
        sa.text("SELECT count(*) FROM deid_pseudonym_vault WHERE original_id IS NULL")
    )
    if sealed.scalar_one():
        raise RuntimeError(
            "deid_pseudonym_vault holds encrypted originals: the previous revision cannot keep "
            "them (it stores plaintext). Restore the database from before the upgrade instead."
        )
    with op.batch_alter_table("deid_pseudonym_vault", schema=None) as batch_op:
        batch_op.drop_constraint("uq_deid_vault_pseudonym", type_="unique")
        batch_op.drop_index(batch_op.f("ix_deid_pseudonym_vault_vault_key_id"))
        batch_op.create_unique_constraint(
            "uq_deid_vault_id", ["tenant", "role", "original_id", "key_version"]
        )
        batch_op.alter_column("original_id", existing_type=sa.VARCHAR(length=256), nullable=False)
        batch_op.drop_column("vault_key_id")
        batch_op.drop_column("original_sealed")

    op.drop_table("deid_key_fingerprint")

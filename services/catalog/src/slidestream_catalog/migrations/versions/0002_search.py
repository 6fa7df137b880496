"""search: slides, QC measures, model scores and runs, the generation pointer, full text

Revision ID: 0002_search
Revises: 76aae205a20f
Create Date: 2026-12-06 22:40:00

Full text: PostgreSQL indexes ``to_tsvector('simple', text)`` with GIN (the 'simple' configuration:
names and codes, not English prose, so no stemming); SQLite keeps an FTS5 external-content table
``search_slide_fts`` in step with ``search_slide.text`` by triggers (on SQLite's implicit rowid).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_search"
down_revision: str | Sequence[str] | None = "76aae205a20f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FULL_TEXT = (
    "CREATE VIRTUAL TABLE search_slide_fts USING fts5("
    "text, content='search_slide', content_rowid='rowid', tokenize='unicode61')",
    "CREATE TRIGGER search_slide_fts_insert AFTER INSERT ON search_slide BEGIN "
    "INSERT INTO search_slide_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER search_slide_fts_delete AFTER DELETE ON search_slide BEGIN "
    "INSERT INTO search_slide_fts(search_slide_fts, rowid, text) "
    "VALUES ('delete', old.rowid, old.text); END",
    "CREATE TRIGGER search_slide_fts_update AFTER UPDATE OF text ON search_slide BEGIN "
    "INSERT INTO search_slide_fts(search_slide_fts, rowid, text) "
    "VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO search_slide_fts(rowid, text) VALUES (new.rowid, new.text); END",
)
POSTGRES_FULL_TEXT = (
    "CREATE INDEX ix_search_slide_text ON search_slide USING gin (to_tsvector('simple', text))",
)


def upgrade() -> None:
    op.create_table(
        "search_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.Column("building", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events_applied", sa.Integer(), nullable=False),
        sa.Column("swapped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "search_measure",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.PrimaryKeyConstraint("generation", "slide_id", "name"),
    )
    op.create_index("ix_search_measure_value", "search_measure", ["generation", "name", "value"])
    op.create_table(
        "search_model_run",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Uuid(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("tile_count", sa.Integer(), nullable=False),
        sa.Column("tile_mpp_um", sa.Float(), nullable=True),
        sa.Column("embeddings_json", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column(
            "slide_embedding_json", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True
        ),
        sa.Column("inferred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("generation", "slide_id", "model"),
    )
    op.create_index("ix_search_model_run_model", "search_model_run", ["generation", "model"])
    op.create_table(
        "search_score",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Uuid(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("output", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("generation", "slide_id", "model", "output"),
    )
    op.create_index(
        "ix_search_score_value", "search_score", ["generation", "model", "output", "value"]
    )
    op.create_table(
        "search_slide",
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("species", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("organ", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("stain", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("container_format", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("original_bytes", sa.BigInteger(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("specimen_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("scanner_vendor", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("scanner_model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("width_px", sa.Integer(), nullable=True),
        sa.Column("height_px", sa.Integer(), nullable=True),
        sa.Column("mpp_um", sa.Float(), nullable=True),
        sa.Column("objective_power", sa.Float(), nullable=True),
        sa.Column("deidentified_bytes", sa.BigInteger(), nullable=True),
        sa.Column("deidentified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("level_count", sa.Integer(), nullable=True),
        sa.Column("converted_bytes", sa.BigInteger(), nullable=True),
        sa.Column("levels_json", sqlmodel.sql.sqltypes.AutoString(length=20000), nullable=False),
        sa.Column("images_json", sqlmodel.sql.sqltypes.AutoString(length=20000), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("qc_verdict", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("qc_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tile_count", sa.Integer(), nullable=True),
        sa.Column("inferred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.PrimaryKeyConstraint("generation", "slide_id"),
    )
    op.create_index(
        "ix_search_slide_tenant_organ", "search_slide", ["generation", "tenant", "organ"]
    )
    op.create_index(
        "ix_search_slide_tenant_project", "search_slide", ["generation", "tenant", "project"]
    )
    op.create_index(
        "ix_search_slide_tenant_stain", "search_slide", ["generation", "tenant", "stain"]
    )
    op.create_index(
        "ix_search_slide_tenant_state", "search_slide", ["generation", "tenant", "state"]
    )
    op.create_index(
        "ix_search_slide_tenant_uploaded", "search_slide", ["generation", "tenant", "uploaded_at"]
    )
    op.create_index(
        "ix_search_slide_tenant_vendor", "search_slide", ["generation", "tenant", "scanner_vendor"]
    )
    op.create_index(
        "ix_search_slide_tenant_verdict", "search_slide", ["generation", "tenant", "qc_verdict"]
    )
    op.execute("INSERT INTO search_generation (id, live, events_applied) VALUES (1, 1, 0)")
    statements = SQLITE_FULL_TEXT if op.get_bind().dialect.name == "sqlite" else POSTGRES_FULL_TEXT
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_slide_fts")
    for table in (
        "search_slide",
        "search_score",
        "search_model_run",
        "search_measure",
        "search_generation",
    ):
        op.drop_table(table)

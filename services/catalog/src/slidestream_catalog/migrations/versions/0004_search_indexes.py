"""search: indexes that answer value filters from the index alone, and the default sort

Revision ID: 0004_search_indexes
Revises: 0003_search_projection
Create Date: 2026-12-06 23:00:00

Measured by ``make bench-search-metadata`` (1 M slides), PostgreSQL: a filter such as
``qc.blur_fraction>0.8`` matched ~200 k measure rows and read each one's heap page for its
slide id (a bitmap heap scan over most of ``search_measure``); with ``INCLUDE (slide_id)`` the
same filter is an index-only range scan. Scores likewise. SQLite keeps its value indexes: it
probes a slide's measures by primary key, and a value index holding ``slide_id`` looked
covering enough to its planner to be scanned whole for a page's 50 slides.

The default sort ``-uploaded_at`` (NULL smallest, so last) with its slide-id tie-break is the
order of ``(generation, tenant, uploaded_at NULLS FIRST, slide_id)`` read backwards: PostgreSQL
declares NULLS FIRST (its default is NULLS LAST); SQLite orders NULL first already and has no
NULLS clause in index definitions.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_search_indexes"
down_revision: str | Sequence[str] | None = "0003_search_projection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALUE_INDEXES = (
    ("ix_search_measure_value", "search_measure", "generation, name, value"),
    ("ix_search_score_value", "search_score", "generation, model, output, value"),
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, columns in VALUE_INDEXES if postgres else ():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON {table} ({columns}) INCLUDE (slide_id)")
    op.execute("DROP INDEX ix_search_slide_tenant_uploaded")
    uploaded = "uploaded_at NULLS FIRST" if postgres else "uploaded_at"
    op.execute(
        "CREATE INDEX ix_search_slide_tenant_uploaded ON search_slide "
        f"(generation, tenant, {uploaded}, slide_id)"
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, columns in VALUE_INDEXES if postgres else ():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON {table} ({columns})")
    op.execute("DROP INDEX ix_search_slide_tenant_uploaded")
    op.execute(
        "CREATE INDEX ix_search_slide_tenant_uploaded ON search_slide "
        "(generation, tenant, uploaded_at)"
    )

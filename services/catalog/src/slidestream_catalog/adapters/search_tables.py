"""The search projection's tables: one row per slide and what people filter on.

Every row carries a ``generation``: the live generation answers queries, and ``slidestream admin
reindex`` rebuilds the next one from the topics' earliest offsets, then swaps the pointer in
:class:`SearchGenerationRow` (no DDL, so it works the same on PostgreSQL and SQLite).

Monotonic per stage: each stage's columns are written together with that stage's event time
(``uploaded_at`` ... ``inferred_at``); an event older than the stored time of its stage never
overwrites it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, Index
from sqlmodel import Field

from slidestream_catalog.adapters.repository import CatalogTable

TZ = DateTime(timezone=True)


class SearchSlideRow(CatalogTable, table=True):
    """Everything filterable about one slide (names match :data:`SEARCH_FIELDS`)."""

    __tablename__ = "search_slide"
    __table_args__ = (
        # PostgreSQL declares uploaded_at NULLS FIRST (migration 0004_search_indexes).
        Index("ix_search_slide_tenant_uploaded", "generation", "tenant", "uploaded_at", "slide_id"),
        Index("ix_search_slide_tenant_stain", "generation", "tenant", "stain"),
        Index("ix_search_slide_tenant_organ", "generation", "tenant", "organ"),
        Index("ix_search_slide_tenant_vendor", "generation", "tenant", "scanner_vendor"),
        Index("ix_search_slide_tenant_verdict", "generation", "tenant", "qc_verdict"),
        Index("ix_search_slide_tenant_state", "generation", "tenant", "state"),
        Index("ix_search_slide_tenant_project", "generation", "tenant", "project"),
    )

    generation: int = Field(primary_key=True)
    slide_id: UUID = Field(primary_key=True)
    tenant: str = Field(max_length=63)
    # slides.uploaded.v1
    project: str | None = Field(default=None, max_length=100)
    species: str | None = Field(default=None, max_length=100)
    organ: str | None = Field(default=None, max_length=100)
    stain: str | None = Field(default=None, max_length=100)
    container_format: str | None = Field(default=None, max_length=16)
    original_bytes: int | None = Field(default=None, sa_type=BigInteger)
    uploaded_at: datetime | None = Field(default=None, sa_type=TZ)
    # slides.deidentified.v1
    case_id: str | None = Field(default=None, max_length=100)
    specimen_id: str | None = Field(default=None, max_length=100)
    patient_id: str | None = Field(default=None, max_length=100)
    scanner_vendor: str | None = Field(default=None, max_length=100)
    scanner_model: str | None = Field(default=None, max_length=200)
    format: str | None = Field(default=None, max_length=32)
    width_px: int | None = None
    height_px: int | None = None
    mpp_um: float | None = None
    objective_power: float | None = None
    deidentified_bytes: int | None = Field(default=None, sa_type=BigInteger)
    deidentified_at: datetime | None = Field(default=None, sa_type=TZ)
    # slides.converted.v1
    level_count: int | None = None
    converted_bytes: int | None = Field(default=None, sa_type=BigInteger)
    levels_json: str = Field(default="[]", max_length=20000)
    """The converted pyramid: ``[{"index", "width_px", "height_px", "tile_size_px"}, ...]``."""
    images_json: str = Field(default="{}", max_length=20000)
    """Where the converted slide lies: ``{"dicom": [ref...], "tiff": ref|null}`` (crops)."""
    converted_at: datetime | None = Field(default=None, sa_type=TZ)
    # slides.qc.v1
    qc_verdict: str | None = Field(default=None, max_length=8)
    qc_reasons_json: str = Field(default="[]", max_length=4000)
    """The QC reasons (``SlideQcV1.reasons``) as a JSON list: part of the text document."""
    qc_at: datetime | None = Field(default=None, sa_type=TZ)
    # slides.inferred.v1 (the latest run of any model)
    tile_count: int | None = None
    inferred_at: datetime | None = Field(default=None, sa_type=TZ)
    # slides.status.v1 and slides.rejected.v1 (lifecycle rules of slidestream_contracts)
    state: str | None = Field(default=None, max_length=32)
    step: str | None = Field(default=None, max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=2000)
    status_at: datetime | None = Field(default=None, sa_type=TZ)
    updated_at: datetime | None = Field(default=None, sa_type=TZ)
    text: str = Field(default="", max_length=4000)
    """The free-text document (names and descriptions), indexed by FTS5 / tsvector."""


class SearchMeasureRow(CatalogTable, table=True):
    """One QC measure of a slide (``qc.<name>`` in filters)."""

    __tablename__ = "search_measure"
    # slide_id last: a value filter is answered from the index alone (0004_search_indexes).
    __table_args__ = (Index("ix_search_measure_value", "generation", "name", "value", "slide_id"),)

    generation: int = Field(primary_key=True)
    slide_id: UUID = Field(primary_key=True)
    name: str = Field(primary_key=True, max_length=100)
    value: float
    unit: str = Field(default="", max_length=32)
    verdict: str = Field(default="", max_length=8)


class SearchScoreRow(CatalogTable, table=True):
    """One slide-level output of a model's latest run (``score.<model>.<output>`` in filters)."""

    __tablename__ = "search_score"
    __table_args__ = (
        Index(
            "ix_search_score_value",
            "generation",
            "model",
            "output",
            "value",
            postgresql_include=["slide_id"],
        ),
    )

    generation: int = Field(primary_key=True)
    slide_id: UUID = Field(primary_key=True)
    model: str = Field(primary_key=True, max_length=63)
    output: str = Field(primary_key=True, max_length=100)
    value: float


class SearchModelRunRow(CatalogTable, table=True):
    """A model's latest run on a slide: what similarity search reads (``model`` in filters)."""

    __tablename__ = "search_model_run"
    __table_args__ = (Index("ix_search_model_run_model", "generation", "model"),)

    generation: int = Field(primary_key=True)
    slide_id: UUID = Field(primary_key=True)
    model: str = Field(primary_key=True, max_length=63)
    model_version: str = Field(max_length=16)
    tenant: str = Field(max_length=63)
    tile_count: int = 0
    tile_mpp_um: float | None = None
    embeddings_json: str | None = Field(default=None, max_length=2000)
    """The run's ``embeddings.npz`` reference (bucket, key, sha256, size), if it has one."""
    slide_embedding_json: str | None = Field(default=None, max_length=2000)
    inferred_at: datetime = Field(sa_type=TZ)


class SearchGenerationRow(CatalogTable, table=True):
    """The one pointer row (``id`` 1): which generation answers, and a rebuild's progress."""

    __tablename__ = "search_generation"

    id: int = Field(default=1, primary_key=True)
    live: int = 1
    building: int | None = None
    started_at: datetime | None = Field(default=None, sa_type=TZ)
    events_applied: int = 0
    swapped_at: datetime | None = Field(default=None, sa_type=TZ)

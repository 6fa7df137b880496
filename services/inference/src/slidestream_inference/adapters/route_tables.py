"""The models API's tables: routes, backfills and model loads (migration ``0002_routes``)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field

from slidestream_inference.adapters.tables import InferenceTable

ANY = ""
"""A route's ``project`` or ``stain`` that matches every slide. Stored as an empty string, not
NULL, because SQL unique keys treat NULLs as distinct: two "any stain" routes of one model and
tenant would both be accepted."""


def _now() -> datetime:
    return datetime.now(UTC)


class RouteRow(InferenceTable, table=True):
    """Which slides a model runs on: one row per (model, tenant, project, stain)."""

    __tablename__ = "inference_routes"

    model_name: str = Field(primary_key=True, max_length=63)
    tenant: str = Field(primary_key=True, max_length=63)
    project: str = Field(primary_key=True, max_length=128, default=ANY)
    stain: str = Field(primary_key=True, max_length=64, default=ANY)
    min_qc: str = Field(max_length=8)
    """``pass``: only slides QC passed; ``warn``: passed or warned."""
    version: str | None = Field(default=None, max_length=9)
    """A pinned version; ``None`` runs the newest version at the time the slide is analysed."""
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class BackfillRow(InferenceTable, table=True):
    """One backfill: how many requests it published and how many of them ended."""

    __tablename__ = "inference_backfills"

    id: UUID = Field(primary_key=True)
    model_name: str = Field(index=True, max_length=63)
    version: str = Field(max_length=9)
    requested: int = 0
    done: int = 0
    failed: int = 0
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class ModelLoadRow(InferenceTable, table=True):
    """When the models API last loaded a model (Triton does not report load times), shared by
    every replica of the service; removed when the model is unloaded."""

    __tablename__ = "inference_model_loads"

    model_name: str = Field(primary_key=True, max_length=63)
    loaded_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    canary_s: float = 0.0

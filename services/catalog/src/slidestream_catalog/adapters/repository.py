"""The catalog's table: the slide-state projection (slidestream_platform.projection)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from slidestream_contracts.lifecycle import SlideRecord, StatusChange
from slidestream_platform.projection import SlideStateColumns


class SlideRepository(Protocol):
    def record(self, change: StatusChange) -> SlideRecord: ...

    def get(self, slide_id: UUID) -> SlideRecord | None: ...


class CatalogTable(SQLModel, registry=registry()):
    """Base of the catalog's tables: its own metadata, so no other service's tables mix in."""


metadata = CatalogTable.metadata


class SlideRow(SlideStateColumns, CatalogTable, table=True):
    __tablename__ = "catalog_slide"

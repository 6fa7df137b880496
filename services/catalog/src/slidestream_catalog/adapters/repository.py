"""The catalog's table base: its own SQLModel metadata (the tables are in ``search_tables``)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class CatalogTable(SQLModel, registry=registry()):
    """Base of the catalog's tables: its own metadata, so no other service's tables mix in."""


metadata = CatalogTable.metadata

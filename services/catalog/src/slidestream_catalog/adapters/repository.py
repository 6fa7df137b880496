"""The catalog's table base: its own SQLModel metadata (the tables are in ``search_tables``)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from slidestream_platform.attempts import DeliveryAttemptColumns


class CatalogTable(SQLModel, registry=registry()):
    """Base of the catalog's tables: its own metadata, so no other service's tables mix in."""


metadata = CatalogTable.metadata


class DeliveryAttemptRow(DeliveryAttemptColumns, CatalogTable, table=True):
    """Failed deliveries of the messages catalog is handling, crashes included
    (:mod:`slidestream_platform.attempts`)."""

    __tablename__ = "catalog_delivery_attempts"

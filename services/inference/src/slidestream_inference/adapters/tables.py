"""The inference service's tables (its own metadata: no other service reads or writes them)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import SQLModel


class InferenceTable(SQLModel, registry=registry()):
    """Base of the inference service's tables."""


metadata = InferenceTable.metadata

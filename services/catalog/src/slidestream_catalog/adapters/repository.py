"""Where slide records live: a small Protocol, and its SQL implementation (sqlmodel)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from slidestream_contracts.states import SlideState, Step
from sqlalchemy import Column, DateTime, Engine
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel

from slidestream_catalog.domain.lifecycle import SlideRecord, StatusChange, apply


class SlideRepository(Protocol):
    def record(self, change: StatusChange) -> SlideRecord: ...

    def get(self, slide_id: UUID) -> SlideRecord | None: ...


class CatalogTable(SQLModel, registry=registry()):
    """Base of the catalog's tables: its own metadata, so no other service's tables mix in."""


metadata = CatalogTable.metadata


class SlideRow(CatalogTable, table=True):
    __tablename__ = "catalog_slide"

    slide_id: UUID = Field(primary_key=True)
    tenant: str = Field(index=True, max_length=63)
    state: str = Field(index=True, max_length=32)
    step: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=2000)
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    transitions: int = 1

    def to_record(self) -> SlideRecord:
        return SlideRecord(
            slide_id=self.slide_id,
            tenant=self.tenant,
            state=SlideState(self.state),
            step=Step(self.step),
            reason=self.reason,
            detail=self.detail,
            # SQLite hands back naive datetimes; every timestamp we store is UTC.
            updated_at=self.updated_at
            if self.updated_at.tzinfo
            else self.updated_at.replace(tzinfo=UTC),
            transitions=self.transitions,
        )


class SqlSlideRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, slide_id: UUID) -> SlideRecord | None:
        with Session(self._engine) as session:
            row = session.get(SlideRow, slide_id)
            return row.to_record() if row is not None else None

    def record(self, change: StatusChange) -> SlideRecord:
        # One transaction per event; the row lock (PostgreSQL) serialises concurrent redeliveries.
        with Session(self._engine) as session, session.begin():
            row = session.get(SlideRow, change.slide_id, with_for_update=True)
            current = row.to_record() if row is not None else None
            updated = apply(current, change)
            if updated is not current:
                row = row or SlideRow(
                    slide_id=change.slide_id,
                    tenant=change.tenant,
                    state="",
                    step="",
                    updated_at=change.occurred_at,
                )
                row.tenant = updated.tenant
                row.state = updated.state.value
                row.step = updated.step.value
                row.reason = updated.reason
                row.detail = updated.detail
                row.updated_at = updated.updated_at
                row.transitions = updated.transitions
                session.add(row)
            return updated

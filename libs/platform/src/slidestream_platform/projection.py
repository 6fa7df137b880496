"""A SQL projection of slide state from ``slides.status.v1``, for any service that answers
"where is this slide?" (the catalog; the upload API for partners).

The rules are :func:`slidestream_contracts.lifecycle.apply`; this module only stores their result.
Each service declares its own table from :class:`SlideStateColumns` in its own metadata, because
services never share tables::

    class SlideStateRow(SlideStateColumns, MyServiceTable, table=True):
        __tablename__ = "myservice_slide_state"
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID

from sqlalchemy import DateTime, Engine
from sqlmodel import Field, Session, SQLModel

from slidestream_contracts.events import SlideStatusV1
from slidestream_contracts.lifecycle import SlideRecord, StatusChange, apply
from slidestream_contracts.states import SlideState, Step


class SlideStateColumns(SQLModel):
    slide_id: UUID = Field(primary_key=True)
    tenant: str = Field(index=True, max_length=63)
    state: str = Field(index=True, max_length=32)
    step: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=2000)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    transitions: int = 1

    def to_record(self) -> SlideRecord:
        # SQLite hands back naive datetimes; every timestamp stored here is UTC.
        updated = self.updated_at
        return SlideRecord(
            slide_id=self.slide_id,
            tenant=self.tenant,
            state=SlideState(self.state),
            step=Step(self.step),
            reason=self.reason,
            detail=self.detail,
            updated_at=updated if updated.tzinfo else updated.replace(tzinfo=UTC),
            transitions=self.transitions,
        )


RowT = TypeVar("RowT", bound=SlideStateColumns)


def status_change(event: SlideStatusV1) -> StatusChange:
    return StatusChange(
        slide_id=event.slide_id,
        tenant=event.tenant,
        state=event.state,
        step=event.step,
        reason=event.reason,
        detail=event.detail,
        occurred_at=event.occurred_at,
    )


class SqlSlideStates(Generic[RowT]):
    """Records status changes into one service's slide-state table."""

    def __init__(self, engine: Engine, table: type[RowT]) -> None:
        self._engine = engine
        self._table = table

    def get(self, slide_id: UUID) -> SlideRecord | None:
        with Session(self._engine) as session:
            row = session.get(self._table, slide_id)
            return row.to_record() if row is not None else None

    def record(self, change: StatusChange) -> SlideRecord:
        # One transaction per event; the row lock (PostgreSQL) serialises concurrent redeliveries.
        with Session(self._engine) as session, session.begin():
            row = session.get(self._table, change.slide_id, with_for_update=True)
            current = row.to_record() if row is not None else None
            updated = apply(current, change)
            if updated is current:
                return updated
            if row is None:
                row = self._table(
                    slide_id=change.slide_id,
                    tenant=updated.tenant,
                    state=updated.state.value,
                    step=updated.step.value,
                    updated_at=updated.updated_at,
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

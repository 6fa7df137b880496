"""The catalog's HTTP API: a slide's state so far, for its own tenant's token only."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from slidestream_catalog.ports import SearchStore
from slidestream_catalog.tenants import CallerTenant
from slidestream_contracts.states import SlideState, Step


class SlideStateView(BaseModel):
    slide_id: UUID
    tenant: str
    state: SlideState
    step: Step
    reason: str | None
    detail: str
    updated_at: datetime


router = APIRouter()


@router.get("/slides/{slide_id}")
async def get_slide(slide_id: UUID, request: Request, tenant: CallerTenant) -> SlideStateView:
    search: SearchStore = request.app.state.projection
    record = search.slide(slide_id)
    # Another tenant's slide answers exactly like a missing one: its existence is not told.
    # A slide whose status has not arrived yet (another stage's event came first) has no state.
    if (
        record is None
        or record.tenant != tenant
        or record.state is None
        or record.step is None
        or record.status_at is None
    ):
        raise HTTPException(status_code=404, detail="unknown slide")
    return SlideStateView(
        slide_id=record.slide_id,
        tenant=record.tenant,
        state=SlideState(record.state),
        step=Step(record.step),
        reason=record.reason,
        detail=record.detail,
        updated_at=record.status_at,
    )

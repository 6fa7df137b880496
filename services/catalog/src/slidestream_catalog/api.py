"""The catalog's HTTP API: a slide's state so far (internal; partners use the upload API)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from slidestream_catalog.adapters.repository import SlideRepository
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
async def get_slide(slide_id: UUID, request: Request) -> SlideStateView:
    slides: SlideRepository = request.app.state.slides
    record = slides.get(slide_id)
    if record is None:
        raise HTTPException(status_code=404, detail="unknown slide")
    return SlideStateView(
        slide_id=record.slide_id,
        tenant=record.tenant,
        state=record.state,
        step=record.step,
        reason=record.reason,
        detail=record.detail,
        updated_at=record.updated_at,
    )

"""The partner REST API: who am I, upload progress, slide state, batch manifests.

Every route needs ``Authorization: Bearer <token>``; a token sees only its own tenant's uploads,
slides and batches — another tenant's answer 404, exactly like an unknown id, so ids cannot be
probed across tenants. An unknown or revoked token answers 401 ``unauthorized``, an expired one
401 ``token-expired``.

Every request spends from two token buckets (``domain/rate_limits``): its client address's,
before the token is looked up, and its token's, once the token is known. An empty bucket answers
429 ``rate-limited`` with ``Retry-After`` in whole seconds.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from slidestream_contracts.slide_facts import SlideFactsError, parse_slide_facts
from slidestream_contracts.states import SlideState, Step
from slidestream_contracts.tokens import bearer_token, token_sha256
from slidestream_platform.projection import SqlSlideStates
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.adapters.tables import SlideStateRow, UploadRow
from slidestream_upload.domain.admission import Refusal
from slidestream_upload.domain.manifest import (
    ArrivedFile,
    ManifestError,
    ManifestRow,
    parse_manifest,
    reconcile,
)
from slidestream_upload.domain.rate_limits import PartnerRateLimits, TokenBuckets, retry_after_s
from slidestream_upload.domain.tokens import UNKNOWN_TOKEN
from slidestream_upload.fixes import fix_slide
from slidestream_upload.settings import UploadSettings

MAX_MANIFEST_BYTES = 16 * 1024 * 1024

router = APIRouter(prefix="/v1")


def _repository(request: Request) -> UploadRepository:
    uploads: UploadRepository = request.app.state.uploads
    return uploads


def _unauthorized(refusal: Refusal) -> HTTPException:
    return HTTPException(
        status_code=refusal.status_code,
        detail={"reason": refusal.reason, "message": refusal.message},
        headers={"WWW-Authenticate": "Bearer"},
    )


def _spend(buckets: TokenBuckets, key: str, what: str) -> None:
    """Take one request from ``key``'s bucket, or answer 429 with when to come back."""
    wait_s = buckets.take(key)
    if wait_s > 0:
        retry_after = retry_after_s(wait_s)
        raise HTTPException(
            status_code=429,
            detail={
                "reason": "rate-limited",
                "message": f"too many requests from this {what}; retry in {retry_after} s",
            },
            headers={"Retry-After": str(retry_after)},
        )


async def tenant(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    limits: PartnerRateLimits = request.app.state.rate_limits
    _spend(limits.per_address, request.client.host if request.client else "", "address")
    token = bearer_token(authorization)
    if token is None:
        raise _unauthorized(UNKNOWN_TOKEN)
    found = await asyncio.to_thread(_repository(request).authenticate, token)
    if isinstance(found, Refusal):
        raise _unauthorized(found)
    _spend(limits.per_token, token_sha256(token), "token")
    return found


Tenant = Annotated[str, Depends(tenant)]


class InfoView(BaseModel):
    tenant: str
    tus_url: str
    max_upload_bytes: int


class UploadView(BaseModel):
    slide_id: UUID
    filename: str
    state: str
    received_bytes: int
    size_bytes: int
    reason: str | None
    detail: str
    created_at: datetime
    finished_at: datetime | None


class SlideView(BaseModel):
    slide_id: UUID
    state: SlideState | None
    """``None`` while the upload is still being received or verified."""
    step: Step | None
    reason: str | None
    detail: str
    updated_at: datetime | None
    upload_state: str


class BatchCreated(BaseModel):
    batch_id: UUID
    rows: int


class BatchView(BaseModel):
    batch_id: UUID
    rows: int
    matched: list[str]
    missing: list[str]
    extra: list[str]
    checksum_mismatch: list[str]
    pending: list[str]
    complete: bool


async def _own_upload(request: Request, tenant: str, slide_id: UUID) -> UploadRow:
    row = await asyncio.to_thread(_repository(request).upload, slide_id)
    if row is None or row.tenant != tenant:
        raise HTTPException(
            status_code=404, detail={"reason": "not-found", "message": "no such slide"}
        )
    return row


@router.get("/info")
async def info(request: Request, tenant: Tenant) -> InfoView:
    settings: UploadSettings = request.app.state.settings
    return InfoView(
        tenant=tenant, tus_url=settings.tus_url, max_upload_bytes=settings.max_upload_bytes
    )


@router.get("/uploads/{slide_id}")
async def get_upload(slide_id: UUID, request: Request, tenant: Tenant) -> UploadView:
    row = await _own_upload(request, tenant, slide_id)
    return UploadView(
        slide_id=row.slide_id,
        filename=row.filename,
        state=row.state,
        received_bytes=row.received_bytes,
        size_bytes=row.declared_size_bytes,
        reason=row.reason,
        detail=row.detail,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


@router.get("/slides/{slide_id}")
async def get_slide(slide_id: UUID, request: Request, tenant: Tenant) -> SlideView:
    row = await _own_upload(request, tenant, slide_id)
    states: SqlSlideStates[SlideStateRow] = request.app.state.slide_states
    record = await asyncio.to_thread(states.get, slide_id)
    if record is None:
        # No status event yet: the upload is still being received or verified, or it was
        # refused before the pipeline saw it (rejections also publish a status).
        return SlideView(
            slide_id=slide_id,
            state=None,
            step=None,
            reason=row.reason,
            detail=row.detail,
            updated_at=None,
            upload_state=row.state,
        )
    return SlideView(
        slide_id=slide_id,
        state=record.state,
        step=record.step,
        reason=record.reason,
        detail=record.detail,
        updated_at=record.updated_at,
        upload_state=row.state,
    )


class FixView(BaseModel):
    slide_id: UUID
    fix_id: UUID
    step: Step
    reason: str
    declared: dict[str, float | str]


@router.post("/slides/{slide_id}/fix", status_code=202)
async def fix(
    slide_id: UUID,
    request: Request,
    tenant: Tenant,
    values: Annotated[dict[str, float | str], Body()],
) -> FixView:
    """Supply what a failed slide lacked (``mpp_um``...); its failed step runs again, once."""
    row = await _own_upload(request, tenant, slide_id)
    try:
        facts = parse_slide_facts(values)
    except SlideFactsError as error:
        detail = {"reason": "invalid-slide-facts", "field": error.field, "message": str(error)}
        raise HTTPException(status_code=422, detail=detail) from error
    outcome = await fix_slide(
        row,
        facts,
        uploads=_repository(request),
        states=request.app.state.slide_states,
        publisher=request.app.state.publisher,
    )
    if isinstance(outcome, Refusal):
        detail = {"reason": outcome.reason, "message": outcome.message}
        raise HTTPException(status_code=outcome.status_code, detail=detail)
    return FixView(
        slide_id=slide_id,
        fix_id=outcome.fix_id,
        step=outcome.step,
        reason=outcome.reason,
        declared=outcome.declared.model_dump(mode="json", exclude_none=True),
    )


@router.post("/batches", status_code=201, response_model=BatchCreated)
async def create_batch(
    request: Request,
    tenant: Tenant,
    content_type: Annotated[str, Header()] = "text/csv",
) -> BatchCreated | JSONResponse:
    body = await request.body()
    if len(body) > MAX_MANIFEST_BYTES:
        return JSONResponse(
            {"reason": "manifest-too-large", "message": f"limit is {MAX_MANIFEST_BYTES} bytes"},
            status_code=413,
        )
    try:
        rows = parse_manifest(body, content_type)
    except ManifestError as error:
        return JSONResponse({"reason": "bad-manifest", "message": str(error)}, status_code=400)
    batch_id = await asyncio.to_thread(_repository(request).create_batch, tenant, rows)
    return BatchCreated(batch_id=batch_id, rows=len(rows))


@router.get("/batches/{batch_id}")
async def get_batch(batch_id: UUID, request: Request, tenant: Tenant) -> BatchView:
    uploads = _repository(request)
    batch = await asyncio.to_thread(uploads.batch, batch_id)
    if batch is None or batch.tenant != tenant:
        raise HTTPException(
            status_code=404, detail={"reason": "not-found", "message": "no such batch"}
        )
    items = await asyncio.to_thread(uploads.batch_items, batch_id)
    arrived = [
        ArrivedFile(
            filename=row.filename,
            sha256=row.verified_sha256,
            slide_id=str(row.slide_id),
        )
        for row in await asyncio.to_thread(uploads.batch_uploads, batch_id)
        if row.state not in ("expired", "terminated")
    ]
    report = reconcile(
        [ManifestRow(filename=item.filename, sha256=item.sha256) for item in items], arrived
    )
    return BatchView(
        batch_id=batch_id,
        rows=batch.row_count,
        matched=report.matched,
        missing=report.missing,
        extra=report.extra,
        checksum_mismatch=report.checksum_mismatch,
        pending=report.pending,
        complete=report.complete,
    )

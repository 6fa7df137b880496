"""The metadata search API: cohort queries with facets, their export, and the field list.

* ``GET /v1/search?q=&filter=…&facet=…&sort=&limit=&cursor=`` → :class:`SearchPage`;
* ``GET /v1/search/export?format=csv|jsonl&q=&filter=…&sort=`` → the whole cohort, streamed
  page by page (keyset), at most ``search_export_max_rows`` rows;
* ``GET /v1/search/fields`` → every field, with the ``qc.*`` / ``score.*`` names the caller's
  slides have.

The tenant is the caller's token's (:data:`CallerTenant`), never a parameter. Database work runs
in a worker thread so the event loop keeps serving while a query runs. A query the caller got
wrong answers 400 ``{"reason", "field", "message"}``; one that ran past the statement timeout 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from slidestream_catalog.adapters.search_reader import SearchTimeoutError, SlideSearch
from slidestream_catalog.domain.search_cursor import decode_cursor
from slidestream_catalog.domain.search_export import (
    MEDIA_TYPES,
    ExportFormat,
    csv_header,
    csv_rows,
    export_columns,
    jsonl_rows,
)
from slidestream_catalog.domain.search_query import SearchQueryError, build_query
from slidestream_catalog.settings import CatalogSettings
from slidestream_catalog.tenants import CallerTenant
from slidestream_contracts.search import (
    MAX_PAGE_SIZE,
    QC_FIELD_PREFIX,
    SCORE_FIELD_PREFIX,
    SEARCH_FIELDS,
    FieldKind,
    SearchFieldInfo,
    SearchPage,
    SlideHit,
)

EXPORT_PAGE_ROWS: Final = MAX_PAGE_SIZE
"""Rows per internal export query: big enough to amortise a round trip, small enough that no
statement reads the whole cohort."""

router = APIRouter(tags=["search"])

Text = Annotated[str | None, Query(description="free text over names and descriptions")]
Filters = Annotated[list[str] | None, Query(alias="filter", description="FIELD OP VALUE")]
Facets = Annotated[list[str] | None, Query(alias="facet", description="a keyword field")]
Sort = Annotated[str | None, Query(description="FIELD or -FIELD (default -uploaded_at)")]


@router.get("/v1/search")
async def search(
    request: Request,
    tenant: CallerTenant,
    q: Text = None,
    filters: Filters = None,
    facets: Facets = None,
    sort: Sort = None,
    limit: Annotated[int | None, Query(description=f"1 to {MAX_PAGE_SIZE}")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> SearchPage:
    query = build_query(text=q, filters=filters or (), facets=facets or (), sort=sort, limit=limit)
    return await asyncio.to_thread(_search(request).search, tenant, query, cursor)


@router.get("/v1/search/fields")
async def fields(request: Request, tenant: CallerTenant) -> list[SearchFieldInfo]:
    found = await asyncio.to_thread(_search(request).tenant_fields, tenant)
    listed = [
        SearchFieldInfo(**_info(f.name, f.kind, f.description)) for f in SEARCH_FIELDS.values()
    ]
    listed += [
        SearchFieldInfo(**_info(QC_FIELD_PREFIX + name, FieldKind.NUMBER, "a QC measure"))
        for name in found.measures
    ]
    listed += [
        SearchFieldInfo(
            **_info(SCORE_FIELD_PREFIX + name, FieldKind.NUMBER, "a model's slide-level output")
        )
        for name in found.scores
    ]
    return listed


@router.get("/v1/search/export")
async def export(
    request: Request,
    tenant: CallerTenant,
    format: ExportFormat = ExportFormat.CSV,
    q: Text = None,
    filters: Filters = None,
    sort: Sort = None,
) -> StreamingResponse:
    query = build_query(text=q, filters=filters or (), sort=sort, limit=EXPORT_PAGE_ROWS)
    slides = _search(request)
    max_rows = _settings(request).search_export_max_rows
    # The first page before the response starts: a bad query or a timeout is still a 4xx/5xx.
    first = await asyncio.to_thread(slides.search, tenant, query, None)
    found = await asyncio.to_thread(slides.tenant_fields, tenant)
    columns = export_columns(found.measures, found.scores)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "Content-Disposition": f'attachment; filename="cohort-{stamp}.{format.value}"',
        "X-Total-Count": str(first.total),
        "X-Export-Rows": str(min(first.total, max_rows)),
    }
    if first.total > max_rows:
        headers["X-Export-Truncated"] = "true"

    def encode(hits: tuple[SlideHit, ...]) -> str:
        return csv_rows(columns, hits) if format is ExportFormat.CSV else jsonl_rows(hits)

    async def body() -> AsyncIterator[str]:
        if format is ExportFormat.CSV:
            yield csv_header(columns)
        hits, sent = first.items[:max_rows], 0
        position = decode_cursor(tenant, query, first.next_cursor) if first.next_cursor else None
        while True:
            yield encode(hits)
            sent += len(hits)
            if position is None or sent >= max_rows:
                return
            size = min(EXPORT_PAGE_ROWS, max_rows - sent)
            hits, position = await asyncio.to_thread(
                slides.rows_after, tenant, query, position, size
            )

    return StreamingResponse(body(), media_type=MEDIA_TYPES[format], headers=headers)


async def bad_query(_request: Request, error: Exception) -> JSONResponse:
    """A :class:`SearchQueryError` as 400 ``{"reason", "field", "message"}``."""
    assert isinstance(error, SearchQueryError)
    body = {"reason": error.reason, "field": error.field, "message": error.message}
    return JSONResponse(body, status_code=400)


async def query_timeout(_request: Request, error: Exception) -> JSONResponse:
    """A query cancelled at the statement timeout: 503, try a narrower query."""
    body = {"reason": "query-timeout", "field": None, "message": str(error)}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


EXCEPTION_HANDLERS: Final = {SearchQueryError: bad_query, SearchTimeoutError: query_timeout}
"""What ``main.py`` registers on the app."""


def _search(request: Request) -> SlideSearch:
    slides: SlideSearch = request.app.state.search
    return slides


def _settings(request: Request) -> CatalogSettings:
    settings: CatalogSettings = request.app.state.settings
    return settings


def _info(name: str, kind: FieldKind, description: str) -> dict[str, object]:
    return {
        "name": name,
        "kind": kind,
        "description": description,
        "facetable": kind is FieldKind.KEYWORD,
    }

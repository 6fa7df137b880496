"""Similarity search over HTTP. The token decides the tenant (:data:`CallerTenant`); every
answer is limited to that tenant's slides.

* ``POST /v1/similar`` (:class:`SimilarQuery`): slides similar to a region or a whole slide;
* ``POST /v1/similar/patch`` (multipart ``image``, form ``model``, ``k``, ``version``): slides
  similar to an uploaded patch, embedded by the same model through the inference service;
* ``GET /v1/slides/{id}/crop?x=&y=&size=``: a PNG thumbnail (≤ 256 px) of a level-0 square.

A query that cannot be answered as asked is a 4xx whose ``detail`` names the ``field``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile

from slidestream_catalog.adapters.crops import Crops
from slidestream_catalog.adapters.embedder import Embedder, EmbedRefusedError
from slidestream_catalog.adapters.similar_source import SimilarSource
from slidestream_catalog.domain.similarity import RegionError, check_crop
from slidestream_catalog.similar_search import SimilarQueryError, SimilarSearch
from slidestream_catalog.tenants import CallerTenant
from slidestream_contracts.search import MAX_SIMILAR_K, SimilarPage, SimilarQuery
from slidestream_platform.errors import RetryableError, SlidestreamError

MAX_PATCH_BYTES = 16 * 1024**2
"""An image patch larger than this is refused (413) before it is sent on."""


@dataclass(frozen=True, slots=True)
class SimilarServices:
    """What the routes use; the app keeps one in ``app.state.similar``."""

    search: SimilarSearch
    source: SimilarSource
    crops: Crops
    embedder: Embedder


router = APIRouter()


def _services(request: Request) -> SimilarServices:
    services: SimilarServices = request.app.state.similar
    return services


@contextmanager
def _answering() -> Iterator[None]:
    """Query errors → 4xx naming the field; Milvus, S3 or the models API down → 503; stored
    data that cannot be read (a damaged embeddings file) → 502."""
    try:
        yield
    except (SimilarQueryError, EmbedRefusedError) as error:
        raise _refused(error.status, error.field, str(error)) from error
    except RegionError as error:
        raise _refused(422, "size", str(error)) from error
    except RetryableError as error:
        raise HTTPException(503, {"reason": error.reason, "message": str(error)}) from error
    except SlidestreamError as error:
        raise HTTPException(502, {"reason": error.reason, "message": str(error)}) from error


def _refused(status: int, field: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=status,
        detail={"reason": "bad-query", "field": field, "message": message},
    )


@router.post("/v1/similar")
async def similar(query: SimilarQuery, tenant: CallerTenant, request: Request) -> SimilarPage:
    with _answering():
        return await _services(request).search.by_slide(tenant, query)


@router.post("/v1/similar/patch")
async def similar_patch(
    tenant: CallerTenant,
    request: Request,
    image: Annotated[UploadFile, File()],
    model: Annotated[str, Form(min_length=1, max_length=63)],
    k: Annotated[int, Form(ge=1, le=MAX_SIMILAR_K)] = 10,
    version: Annotated[str | None, Form(max_length=16)] = None,
) -> SimilarPage:
    data = await image.read(MAX_PATCH_BYTES + 1)
    if len(data) > MAX_PATCH_BYTES:
        raise _refused(413, "image", f"an image patch is at most {MAX_PATCH_BYTES} bytes")
    services = _services(request)
    with _answering():
        embedding = await services.embedder.embed(
            model, data, image.content_type or "application/octet-stream", version
        )
        return await services.search.by_vector(
            tenant, embedding.model, embedding.version, embedding.vector, k
        )


@router.get("/v1/slides/{slide_id}/crop")
async def crop(
    slide_id: UUID,
    tenant: CallerTenant,
    request: Request,
    x: Annotated[int, Query(ge=0)],
    y: Annotated[int, Query(ge=0)],
    size: Annotated[int, Query(gt=0, le=1_000_000)],
) -> Response:
    services = _services(request)
    generation = await services.source.live_generation()
    images = await services.source.images(generation, tenant, slide_id)
    if images is None or not images.dicom:
        raise _refused(404, "slide_id", f"no converted slide {slide_id}")
    with _answering():
        check_crop(images.levels, x, y, size)
        png = await services.crops.crop_png(images, x, y, size)
    return Response(content=png, media_type="image/png")

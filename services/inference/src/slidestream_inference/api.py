"""The models API (``/v1/models``, ``/v1/routes``): authorise the bearer token, call the use case.

Errors answer ``{"error": code, "message": str, "problems": [{"field", "message"}]}`` — 401 for
a missing or unknown token, 403 for a missing scope, 404, 409 (version exists), 422 (invalid
request, model or canary), 413 (an image patch over its bounds), 502 (a model that answers
what its card does not declare) and 503 (Triton or Kafka not answering). :class:`ModelsApiRoute`
shapes them inside the router, so the app that includes it needs no exception handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

from fastapi import APIRouter, Form, Path, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, StringConstraints

from slidestream_contracts.events import ModelName, TenantId
from slidestream_contracts.model_card import ModelVersion
from slidestream_inference.adapters.routes import Route
from slidestream_inference.adapters.tokens import (
    Caller,
    ForbiddenError,
    Scope,
    TokenFile,
    UnauthenticatedError,
)
from slidestream_inference.domain.patches import MAX_PATCH_BYTES
from slidestream_inference.domain.routing import MinQc
from slidestream_inference.model_embedding import (
    ModelFaultError,
    NoEmbeddingOutputError,
    NotLoadedError,
    PatchEmbedder,
    PatchTooLargeRequestError,
)
from slidestream_inference.models_admin import (
    AdminError,
    CanaryFailedError,
    InvalidRequestError,
    ModelsAdmin,
    NotFoundError,
    UnavailableError,
    VersionExistsError,
)
from slidestream_inference.models_views import (
    BackfillProgressView,
    BackfillStartedView,
    EmbeddingView,
    LoadedView,
    ModelStatusView,
    ModelsView,
    PushedView,
    RouteDeletedView,
    RoutesView,
    RouteView,
    UnloadedView,
)
from slidestream_modelrepo import FieldProblem

STATUS_OF: dict[type[AdminError], int] = {
    NotFoundError: 404,
    VersionExistsError: 409,
    NoEmbeddingOutputError: 409,
    NotLoadedError: 409,
    PatchTooLargeRequestError: 413,
    InvalidRequestError: 422,
    CanaryFailedError: 422,
    ModelFaultError: 502,
    UnavailableError: 503,
}


def error_response(
    status: int,
    code: str,
    message: str,
    problems: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": code,
        "message": message,
        "problems": [{"field": p.field, "message": p.message} for p in problems],
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_problems(error: RequestValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(".".join(str(part) for part in item["loc"]), str(item["msg"]))
        for item in error.errors()
    ]


READ_METHODS = frozenset({"GET", "HEAD"})


class ModelsApiRoute(APIRoute):
    """Checks the token before the request's body is read (a push is gigabytes: nobody
    without ``models:write`` gets to send them), and answers the errors of the token check,
    the request's validation and the use cases in the API's one error shape (FastAPI's own
    would be ``{"detail": ...}``). Reading needs ``models:read``, everything else
    ``models:write``, unless the class names its one ``scope``; the caller is left in
    ``request.state.caller``."""

    tokens: ClassVar[TokenFile]
    """Set by :func:`models_api` on its own subclass."""
    scope: ClassVar[Scope | None] = None
    """The scope every route of the class needs; ``None``: decided by the method."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        tokens = self.tokens
        reads = self.methods is not None and self.methods <= READ_METHODS
        scope = self.scope or (Scope.MODELS_READ if reads else Scope.MODELS_WRITE)

        async def handle_with_errors(request: Request) -> Response:
            try:
                request.state.caller = tokens.authorise(request.headers.get("Authorization"), scope)
                return await handle(request)
            except UnauthenticatedError as error:
                headers = {"WWW-Authenticate": "Bearer"}
                return error_response(401, "unauthenticated", str(error), headers=headers)
            except ForbiddenError as error:
                return error_response(403, "forbidden", str(error))
            except AdminError as error:
                status = STATUS_OF.get(type(error), 500)
                return error_response(status, error.code, error.message, error.problems)
            except RequestValidationError as error:
                problems = _validation_problems(error)
                return error_response(422, "invalid", "the request is invalid", problems)

        return handle_with_errors


class RouteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: TenantId
    project: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    stain: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    min_qc: MinQc = MinQc.PASS
    version: ModelVersion | None = None


class BackfillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None
    """QC judged at or after this moment (UTC when no offset is given)."""
    slides: list[UUID] | None = None
    version: ModelVersion | None = None


NamePath = Annotated[ModelName, Path()]


def embed_api(embedder: PatchEmbedder, tokens: TokenFile) -> APIRouter:
    """``POST /v1/models/{name}/embed``: an image patch's embedding, for tokens with
    ``models:embed`` (the catalog's, for "find slides similar to this patch")."""

    class EmbedRoute(ModelsApiRoute):
        scope = Scope.MODELS_EMBED

    EmbedRoute.tokens = tokens
    router = APIRouter(prefix="/v1", route_class=EmbedRoute)

    @router.post("/models/{name}/embed")
    async def embed(
        name: NamePath,
        image: UploadFile,
        version: Annotated[ModelVersion | None, Form()] = None,
    ) -> EmbeddingView:
        if image.size is not None and image.size > MAX_PATCH_BYTES:
            limit = f"{image.size} bytes; a patch holds at most {MAX_PATCH_BYTES}"
            raise PatchTooLargeRequestError(
                "the image is too large", [FieldProblem("image", limit)]
            )
        return await embedder.embed(name, await image.read(MAX_PATCH_BYTES + 1), version)

    return router


def models_api(admin: ModelsAdmin, tokens: TokenFile) -> APIRouter:
    """The models API's routes over ``admin``, open to the tokens of ``tokens``."""

    class TokenCheckedRoute(ModelsApiRoute):
        pass

    TokenCheckedRoute.tokens = tokens
    router = APIRouter(prefix="/v1", route_class=TokenCheckedRoute)

    @router.post("/models/{name}/versions/{version}", status_code=201)
    async def push(
        name: NamePath,
        version: Annotated[ModelVersion, Path()],
        card: Annotated[str, Form()],
        archive: UploadFile,
    ) -> PushedView:
        if archive.size is not None and archive.size > admin.max_upload_bytes:
            limit = f"larger than the {admin.max_upload_bytes} bytes a push may hold"
            raise InvalidRequestError("the upload is too large", [FieldProblem("archive", limit)])
        return await admin.push(name, version, card.encode("utf-8"), await archive.read())

    @router.get("/models")
    async def list_models() -> ModelsView:
        return await admin.list_models()

    @router.get("/models/{name}")
    async def model_status(name: NamePath) -> ModelStatusView:
        return await admin.status(name)

    @router.post("/models/{name}/load")
    async def load(name: NamePath) -> LoadedView:
        return await admin.load(name)

    @router.post("/models/{name}/unload")
    async def unload(name: NamePath) -> UnloadedView:
        return await admin.unload(name)

    _add_route_routes(router, admin)
    return router


def _add_route_routes(router: APIRouter, admin: ModelsAdmin) -> None:
    """Routes and backfills: which slides a model runs on."""

    @router.put("/routes/{name}")
    async def put_route(name: NamePath, body: RouteBody) -> RouteView:
        return await admin.put_route(Route(model_name=name, **body.model_dump()))

    @router.delete("/routes/{name}")
    async def delete_routes(
        name: NamePath, tenant: Annotated[TenantId, Query()]
    ) -> RouteDeletedView:
        return await admin.delete_routes(name, tenant)

    @router.get("/routes")
    async def list_routes() -> RoutesView:
        return await admin.list_routes()

    @router.post("/models/{name}/backfill", status_code=202)
    async def backfill(name: NamePath, body: BackfillBody, request: Request) -> BackfillStartedView:
        caller: Caller = request.state.caller
        since = body.since
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return await admin.backfill(
            name, since=since, slide_ids=body.slides, version=body.version, requested_by=caller.name
        )

    @router.get("/models/{name}/backfill/{backfill_id}")
    async def backfill_progress(name: NamePath, backfill_id: UUID) -> BackfillProgressView:
        return await admin.backfill_progress(name, backfill_id)

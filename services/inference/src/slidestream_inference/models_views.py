"""The models API's answers, field for field (the JSON shapes of the spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from slidestream_contracts.model_card import ModelCardV1
from slidestream_inference.adapters.routes import Route
from slidestream_inference.adapters.triton_repository import VersionState
from slidestream_inference.domain.routing import MinQc

READY = "READY"
UNLOADED = "UNLOADED"
"""A version Triton does not list: never loaded, or unloaded and forgotten."""
UNKNOWN = "UNKNOWN"
"""Triton did not answer, so the state is not known."""


class PushedView(BaseModel):
    name: str
    version: str
    files: list[str]


class VersionView(BaseModel):
    version: str
    state: str
    reason: str = ""
    device: str | None = None
    card: dict[str, Any]


class ModelView(BaseModel):
    name: str
    versions: list[VersionView]


class ModelsView(BaseModel):
    models: list[ModelView]


class StatisticsView(BaseModel):
    version: str
    inference_count: int
    execution_count: int
    queue_ms_mean: float
    compute_ms_mean: float


class ModelStatusView(ModelView):
    statistics: list[StatisticsView]
    loaded_at: datetime | None


class CanaryView(BaseModel):
    seconds: float
    outputs: dict[str, list[int]]


class LoadedView(BaseModel):
    name: str
    state: str
    canary: CanaryView


class UnloadedView(BaseModel):
    name: str
    state: str


class RouteView(BaseModel):
    name: str
    tenant: str
    project: str | None
    stain: str | None
    min_qc: MinQc
    version: str | None
    created_at: datetime | None


class RoutesView(BaseModel):
    routes: list[RouteView]


class RouteDeletedView(BaseModel):
    name: str
    tenant: str
    deleted: int


class BackfillStartedView(BaseModel):
    backfill_id: UUID
    requested: int


class BackfillProgressView(BaseModel):
    requested: int
    done: int
    failed: int


def route_view(route: Route) -> RouteView:
    return RouteView(
        name=route.model_name,
        tenant=route.tenant,
        project=route.project,
        stain=route.stain,
        min_qc=route.min_qc,
        version=route.version,
        created_at=route.created_at,
    )


def version_view(
    version: str,
    card: ModelCardV1,
    state: VersionState | None,
    down: str,
    *,
    device: str | None = None,
) -> VersionView:
    if down:
        card_json = card.model_dump(mode="json")
        return VersionView(version=version, state=UNKNOWN, reason=down, card=card_json)
    return VersionView(
        version=version,
        state=state.state if state is not None and state.state else UNLOADED,
        reason=state.reason if state is not None else "",
        device=device if state is not None and state.state == READY else None,
        card=card.model_dump(mode="json"),
    )

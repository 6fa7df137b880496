"""The models API's answers, field for field (the JSON shapes of the spec)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from slidestream_contracts.model_card import ModelCardV1
from slidestream_inference.adapters.routes import Route
from slidestream_inference.adapters.triton_replicas import ReplicaStates
from slidestream_inference.domain.routing import MinQc

READY = "READY"
UNLOADED = "UNLOADED"
"""A version Triton does not list: never loaded, or unloaded and forgotten."""
UNKNOWN = "UNKNOWN"
"""Triton did not answer, so the state is not known."""
MIXED = "MIXED"
"""The Triton replicas disagree (one restarted, one failed a load): ``replicas`` says which
holds what."""


class PushedView(BaseModel):
    name: str
    version: str
    files: list[str]


class ReplicaStateView(BaseModel):
    endpoint: str
    state: str
    reason: str = ""


class VersionView(BaseModel):
    version: str
    state: str
    """Every replica's state when they agree, else ``MIXED``."""
    reason: str = ""
    device: str | None = None
    card: dict[str, Any]
    replicas: list[ReplicaStateView] = []


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
    """The first replica's canary; ``replicas`` has each replica's."""
    replicas: dict[str, CanaryView] = {}


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


def replica_state(version: str, replica: ReplicaStates) -> ReplicaStateView:
    """One replica's state of ``version``: ``UNKNOWN`` when it did not answer, ``UNLOADED`` when
    it does not list the version."""
    if replica.down:
        return ReplicaStateView(endpoint=replica.endpoint, state=UNKNOWN, reason=replica.down)
    state = replica.versions.get(version)
    return ReplicaStateView(
        endpoint=replica.endpoint,
        state=state.state if state is not None and state.state else UNLOADED,
        reason=state.reason if state is not None else "",
    )


def version_view(
    version: str,
    card: ModelCardV1,
    replicas: Sequence[ReplicaStates],
    down: str,
    *,
    device: str | None = None,
) -> VersionView:
    """A version's state over every replica: theirs when they agree, else ``MIXED`` with the
    replicas that are not ready in ``reason``; ``UNKNOWN`` when no replica could be found."""
    card_json = card.model_dump(mode="json")
    if down or not replicas:
        reason = down or "no Triton replica"
        return VersionView(version=version, state=UNKNOWN, reason=reason, card=card_json)
    each = [replica_state(version, replica) for replica in replicas]
    if len({view.state for view in each}) == 1:
        state = each[0].state
        reason = "; ".join(dict.fromkeys(view.reason for view in each if view.reason))
    else:
        state = MIXED
        reason = "; ".join(
            f"{view.endpoint}: {view.state}" + (f" ({view.reason})" if view.reason else "")
            for view in each
            if view.state != READY
        )
    return VersionView(
        version=version,
        state=state,
        reason=reason,
        device=device if any(view.state == READY for view in each) else None,
        card=card_json,
        replicas=each,
    )


class EmbeddingView(BaseModel):
    model: str
    version: str
    dimension: int
    embedding: list[float]
    """The model's ``embedding`` output for the patch, as float32 numbers (an FP16 output is
    widened exactly)."""

"""The shapes the models API (the inference service) answers with."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class _ApiModel(BaseModel):
    # Fields may be added to the API within a version; an older client ignores them.
    model_config = ConfigDict(frozen=True, extra="ignore")


class PushedModel(_ApiModel):
    name: str
    version: str
    files: list[str] = []


class ModelVersionState(_ApiModel):
    version: str
    state: str
    """Triton's state of the version (``READY``, ``UNAVAILABLE``, ...)."""
    reason: str | None = None
    device: str | None = None
    loaded_at: datetime | None = None
    card: dict[str, Any] = {}


class ModelSummary(_ApiModel):
    name: str
    versions: list[ModelVersionState] = []


class ModelList(_ApiModel):
    models: list[ModelSummary] = []


class VersionStatistics(_ApiModel):
    version: str
    inference_count: int = 0
    execution_count: int = 0
    queue_ms_mean: float | None = None
    compute_ms_mean: float | None = None


class ModelDetail(_ApiModel):
    name: str
    versions: list[ModelVersionState] = []
    statistics: list[VersionStatistics] = []
    loaded_at: datetime | None = None


class Canary(_ApiModel):
    seconds: float
    outputs: dict[str, list[int]] = {}
    """Each output's shape as the canary request returned it."""


class LoadResult(_ApiModel):
    name: str
    state: str
    canary: Canary | None = None


class Route(_ApiModel):
    name: str = Field(validation_alias=AliasChoices("name", "model_name", "model"))
    tenant: str
    project: str | None = None
    stain: str | None = None
    min_qc: Literal["pass", "warn"] = "pass"
    version: str | None = None


class RouteList(_ApiModel):
    routes: list[Route] = []


class BackfillStarted(_ApiModel):
    backfill_id: str
    requested: int


class BackfillProgress(_ApiModel):
    requested: int
    done: int = 0
    failed: int = 0

    @property
    def finished(self) -> bool:
        """Every requested slide has been analysed or has failed."""
        return self.done + self.failed >= self.requested

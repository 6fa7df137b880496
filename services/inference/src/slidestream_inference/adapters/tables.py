"""The inference service's tables (its own metadata: no other service reads or writes them)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from slidestream_platform.attempts import DeliveryAttemptColumns
from slidestream_platform.decisions import DecisionColumns

QC_EVENT_MAX_CHARS = 400_000
"""A QC event with its refs (a dozen levels, overlays, mask): a few kilobytes; the bound is
the decision table's own for its events."""


class InferenceTable(SQLModel, registry=registry()):
    """Base of the inference service's tables."""


metadata = InferenceTable.metadata


class DeliveryAttemptRow(DeliveryAttemptColumns, InferenceTable, table=True):
    """Failed deliveries of the messages inference is handling, crashes included
    (:mod:`slidestream_platform.attempts`)."""

    __tablename__ = "inference_delivery_attempts"


class InferenceSlideRow(InferenceTable, table=True):
    """What inference knows of one slide: the facts routes filter on (stain from the upload,
    project where one is known) and its QC event (the levels, DICOM refs and tissue mask a run
    reads; backfill runs from it)."""

    __tablename__ = "inference_slides"

    slide_id: UUID = Field(primary_key=True)
    tenant: str = Field(index=True, max_length=63)
    stain: str | None = Field(default=None, max_length=64)
    project: str | None = Field(default=None, max_length=128)
    """No event carries a project yet; routes with a project match only slides that have one."""
    qc_verdict: str | None = Field(default=None, index=True, max_length=8)
    qc_event_json: str | None = Field(default=None, max_length=QC_EVENT_MAX_CHARS)
    updated_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True), index=True
    )


class InferenceDecisionRow(DecisionColumns, InferenceTable, table=True):
    """One model run decided: slide id + digest of (the QC artefacts, model name, version, card
    sha256), so a slide has one decision per model version."""

    __tablename__ = "inference_decisions"

    model_name: str = Field(index=True, max_length=63)
    model_version: str = Field(max_length=9)
    tile_count: int = 0
    seconds: float = 0.0

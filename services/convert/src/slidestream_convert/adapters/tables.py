"""The convert service's tables (its own metadata: no other service reads or writes them)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(UTC)


class ConvertTable(SQLModel, registry=registry()):
    """Base of the convert service's tables."""


metadata = ConvertTable.metadata


class ConversionRow(ConvertTable, table=True):
    """One converted input (slide id + digest of the de-identified artefacts).

    Written *after* the outputs are in the ``converted`` bucket and *before* the events are
    published, with the position the converted event's partition had then (the
    :class:`~slidestream_platform.publication.VerifiedPublisher` mark); ``published_at`` is set
    once the events are out. A redelivery finds the row and publishes only what is missing, so
    a slide is converted — and announced — exactly once.
    """

    __tablename__ = "convert_conversions"

    slide_id: UUID = Field(primary_key=True)
    input_sha256: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(index=True, max_length=63)
    events_json: str = Field(max_length=400_000)
    """The events to publish, in order (references and numbers only)."""
    mark_partition: int
    mark_offset: int = Field(sa_type=BigInteger)
    converted_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    conversion_s: float = 0.0
    output_bytes: int = Field(default=0, sa_type=BigInteger)

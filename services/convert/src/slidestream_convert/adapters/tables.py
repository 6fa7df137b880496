"""The convert service's tables (its own metadata: no other service reads or writes them)."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from slidestream_platform.attempts import DeliveryAttemptColumns
from slidestream_platform.decisions import DecisionColumns


class ConvertTable(SQLModel, registry=registry()):
    """Base of the convert service's tables."""


metadata = ConvertTable.metadata


class DeliveryAttemptRow(DeliveryAttemptColumns, ConvertTable, table=True):
    """Failed deliveries of the messages convert is handling, crashes included
    (:mod:`slidestream_platform.attempts`)."""

    __tablename__ = "convert_delivery_attempts"


class ConversionRow(DecisionColumns, ConvertTable, table=True):
    """One converted input (slide id + digest of the de-identified artefacts).

    Written *after* the outputs are in the ``converted`` bucket and *before* the events are
    published (:mod:`slidestream_platform.decisions`): a redelivery finds the row and publishes
    only what is missing, so a slide is converted — and announced — once.
    """

    __tablename__ = "convert_conversions"

    conversion_s: float = 0.0
    output_bytes: int = Field(default=0, sa_type=BigInteger)

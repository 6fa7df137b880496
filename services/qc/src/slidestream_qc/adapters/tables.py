"""The qc service's tables (its own metadata: no other service reads or writes them)."""

from __future__ import annotations

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from slidestream_platform.attempts import DeliveryAttemptColumns
from slidestream_platform.decisions import DecisionColumns


class QcTable(SQLModel, registry=registry()):
    """Base of the qc service's tables."""


metadata = QcTable.metadata


class DeliveryAttemptRow(DeliveryAttemptColumns, QcTable, table=True):
    """Failed deliveries of the messages qc is handling, crashes included
    (:mod:`slidestream_platform.attempts`)."""

    __tablename__ = "qc_delivery_attempts"


class QcDecisionRow(DecisionColumns, QcTable, table=True):
    """One judged input (slide id + digest of the converted artefacts it read)."""

    __tablename__ = "qc_decisions"

    verdict: str = Field(index=True, max_length=8)
    fraction_read: float = 0.0
    """Bytes QC read / bytes of the converted slide (the economy the issue asks to report)."""
    seconds: float = 0.0

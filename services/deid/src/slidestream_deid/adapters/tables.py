"""The deid service's tables (its own metadata: no other service reads or writes them).

``deid_pseudonym_vault`` is the only place in the platform that maps original identifiers to
pseudonyms: treat the schema like the quarantine bucket (patient data, restricted access). The
originals in it are encrypted (:mod:`slidestream_deid.adapters.vault_cipher`), so a copy of the
database alone — a backup, a replica, a dump — does not re-identify anyone without the vault key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, LargeBinary, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from slidestream_platform.attempts import DeliveryAttemptColumns
from slidestream_platform.decisions import DecisionColumns


def utc_now() -> datetime:
    return datetime.now(UTC)


class DeidTable(SQLModel, registry=registry()):
    """Base of the deid service's tables."""


metadata = DeidTable.metadata


class DeliveryAttemptRow(DeliveryAttemptColumns, DeidTable, table=True):
    """Failed deliveries of the messages deid is handling, crashes included
    (:mod:`slidestream_platform.attempts`)."""

    __tablename__ = "deid_delivery_attempts"


class Outcome(StrEnum):
    DEIDENTIFIED = "deidentified"
    REJECTED = "rejected"


class ProcessedRow(DecisionColumns, DeidTable, table=True):
    """One decided input (slide id + sha256 of the original), stored with its audit entry, vault
    rows and retention before its events are published
    (:func:`slidestream_platform.decisions.decide_once`): a redelivery publishes only what is
    not out yet instead of doing the work again."""

    __tablename__ = "deid_processed"

    outcome: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)


class AuditRow(DeidTable, table=True):
    """What de-identification did to one slide: names of removed fields and images, never
    their values."""

    __tablename__ = "deid_audit"

    slide_id: UUID = Field(primary_key=True)
    input_sha256: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(index=True, max_length=63)
    slide_format: str = Field(max_length=32)
    removed_fields_json: str = Field(max_length=100_000)
    removed_images_json: str = Field(max_length=10_000)
    software_version: str = Field(max_length=200)
    key_version: int
    artefacts_json: str = Field(max_length=100_000)
    bytes_rewritten: int = Field(sa_type=BigInteger)
    output_bytes: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))

    @property
    def primary_key(self) -> tuple[UUID, str]:
        return (self.slide_id, self.input_sha256)


class VaultRow(DeidTable, table=True):
    """Original identifier → pseudonym, per key version (rotation adds rows, never rewrites).

    The original is stored encrypted (``original_sealed``, under vault key ``vault_key_id``).
    Encryption is randomised, so rows are found by their pseudonym, which is the keyed digest of
    (tenant, role, original) under its key version: one row per identifier and version.
    ``original_id`` is the plaintext of rows written before encryption, emptied (sealed) by the
    first start that has a vault key; no new row fills it."""

    __tablename__ = "deid_pseudonym_vault"
    __table_args__ = (
        UniqueConstraint("tenant", "role", "pseudonym", name="uq_deid_vault_pseudonym"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=63)
    role: str = Field(max_length=32)
    original_id: str | None = Field(default=None, max_length=256)
    original_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    vault_key_id: int | None = Field(default=None, index=True)
    key_version: int
    pseudonym: str = Field(index=True, max_length=64)
    created_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))


class KeyFingerprintRow(DeidTable, table=True):
    """The fingerprint of each key version ever used (:mod:`slidestream_deid.domain.keys`),
    recorded by the first start with that version and compared by every later one."""

    __tablename__ = "deid_key_fingerprint"

    purpose: str = Field(primary_key=True, max_length=16)
    key_version: int = Field(primary_key=True)
    fingerprint: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))


class RetentionRow(DeidTable, table=True):
    """Quarantine objects of a decided slide, deleted once ``delete_after`` has passed."""

    __tablename__ = "deid_quarantine_retention"

    slide_id: UUID = Field(primary_key=True)
    tenant: str = Field(max_length=63)
    bucket: str = Field(max_length=63)
    keys_json: str = Field(max_length=10_000)
    delete_after: datetime = Field(index=True, sa_type=DateTime(timezone=True))
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))

"""The upload service's tables (its own metadata: no other service reads or writes them)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from slidestream_platform.attempts import DeliveryAttemptColumns
from slidestream_platform.projection import SlideStateColumns


def utc_now() -> datetime:
    return datetime.now(UTC)


class UploadTable(SQLModel, registry=registry()):
    """Base of the upload service's tables."""


metadata = UploadTable.metadata


class DeliveryAttemptRow(DeliveryAttemptColumns, UploadTable, table=True):
    """Failed deliveries of the messages upload is handling, crashes included
    (:mod:`slidestream_platform.attempts`)."""

    __tablename__ = "upload_delivery_attempts"


class UploadState(StrEnum):
    RECEIVING = "receiving"
    """tusd accepted the creation; bytes are arriving."""
    PUBLISHING = "publishing"
    """Verified; the uploaded event is being published (exactly once, see adapters/publication)."""
    PUBLISHED = "published"
    REJECTED = "rejected"
    EXPIRED = "expired"
    """Abandoned past the TTL and removed."""
    TERMINATED = "terminated"
    """The client cancelled it (tus termination)."""


ACTIVE_STATES = (UploadState.RECEIVING, UploadState.PUBLISHING, UploadState.PUBLISHED)
"""States whose declared bytes count against the tenant's quota."""


class TenantRow(UploadTable, table=True):
    __tablename__ = "upload_tenant"

    slug: str = Field(primary_key=True, max_length=63)
    quota_bytes: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))


class TokenRow(UploadTable, table=True):
    __tablename__ = "upload_token"

    token_id: UUID = Field(primary_key=True)
    tenant: str = Field(foreign_key="upload_tenant.slug", index=True, max_length=63)
    token_sha256: str = Field(unique=True, max_length=64)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    """``None``: never expires (tokens issued before expiry existed, or without one)."""
    rotated_to: UUID | None = None
    """The successor issued by ``slidestream admin token rotate``; this token ends at
    ``expires_at``, the end of the grace period."""


class UploadRow(UploadTable, table=True):
    __tablename__ = "upload_upload"

    slide_id: UUID = Field(primary_key=True)
    tenant: str = Field(index=True, max_length=63)
    object_key: str = Field(unique=True, max_length=1024)
    tus_id: str | None = Field(default=None, max_length=1024)
    filename: str = Field(max_length=255)
    declared_size_bytes: int = Field(sa_type=BigInteger)
    declared_sha256: str | None = Field(default=None, max_length=64)
    received_bytes: int = Field(default=0, sa_type=BigInteger)
    batch_id: UUID | None = Field(default=None, index=True)
    metadata_json: str = Field(default="{}", max_length=20_000)
    state: str = Field(index=True, max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=2000)
    verified_sha256: str | None = Field(default=None, max_length=64)
    container_format: str | None = Field(default=None, max_length=16)
    event_id: UUID | None = None
    publish_partition: int | None = None
    publish_from_offset: int | None = Field(default=None, sa_type=BigInteger)
    lease_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    verify_attempts: int = 0
    """Verifications of the complete bytes begun (counted before each starts, so an attempt that
    kills its process counts too); past ``max_verify_attempts`` the upload is refused."""
    created_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class BatchRow(UploadTable, table=True):
    __tablename__ = "upload_batch"

    batch_id: UUID = Field(primary_key=True)
    tenant: str = Field(index=True, max_length=63)
    row_count: int
    created_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))


class BatchItemRow(UploadTable, table=True):
    __tablename__ = "upload_batch_item"

    batch_id: UUID = Field(primary_key=True, foreign_key="upload_batch.batch_id")
    filename: str = Field(primary_key=True, max_length=255)
    sha256: str = Field(max_length=64)
    case_id: str | None = Field(default=None, max_length=200)
    specimen_id: str | None = Field(default=None, max_length=200)
    species: str | None = Field(default=None, max_length=100)
    organ: str | None = Field(default=None, max_length=100)
    stain: str | None = Field(default=None, max_length=100)
    extra_json: str = Field(default="{}", max_length=20_000)


class SlideFixRow(UploadTable, table=True):
    """A partner's fix of a failed slide (``slidestream slides fix``): one per slide, ever."""

    __tablename__ = "upload_slide_fix"

    slide_id: UUID = Field(primary_key=True)
    fix_id: UUID
    tenant: str = Field(index=True, max_length=63)
    step: str = Field(max_length=16)
    reason: str = Field(max_length=64)
    facts_json: str = Field(max_length=2000)
    requested_at: datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SlideStateRow(SlideStateColumns, UploadTable, table=True):
    """Where a partner's slide is in the pipeline (projection of slides.status.v1)."""

    __tablename__ = "upload_slide_state"

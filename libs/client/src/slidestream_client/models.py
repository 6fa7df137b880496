"""The shapes the upload API answers with, and what an upload produced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from slidestream_contracts.states import SlideState, Stage, Step, WaitOutcome, wait_outcome


class _ApiModel(BaseModel):
    # Fields may be added to the API within a version; an older client ignores them.
    model_config = ConfigDict(frozen=True, extra="ignore")


class UploadState(StrEnum):
    """Where the bytes of one upload are (``GET /v1/uploads/{slide_id}``)."""

    RECEIVING = "receiving"
    VERIFYING = "verifying"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    REJECTED = "rejected"
    EXPIRED = "expired"
    TERMINATED = "terminated"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_UPLOAD_STATES


_FINAL_UPLOAD_STATES = frozenset(
    {UploadState.PUBLISHED, UploadState.REJECTED, UploadState.EXPIRED, UploadState.TERMINATED}
)


class ServerInfo(_ApiModel):
    tenant: str
    tus_url: str
    max_upload_bytes: int


class UploadStatus(_ApiModel):
    slide_id: str
    filename: str | None = None
    state: UploadState
    received_bytes: int = 0
    size_bytes: int | None = None
    reason: str | None = None
    detail: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


class SlideFix(_ApiModel):
    """``POST /v1/slides/{id}/fix``'s answer: the step that runs again, with which facts."""

    slide_id: str
    fix_id: str
    step: Step
    reason: str
    declared: dict[str, float | str]


class SlideStatus(_ApiModel):
    slide_id: str
    state: SlideState | None = None
    """``None`` while the upload is still being received or verified."""
    step: Step | None = None
    """The step that set ``state`` (tells which stage a ``rejected`` slide did not complete)."""
    reason: str | None = None
    detail: str | None = None
    updated_at: datetime | None = None
    upload_state: UploadState | None = None

    def outcome(self, stage: Stage) -> WaitOutcome:
        """Whether this slide has completed ``stage``, never will, or may still."""
        if self.state is None:
            return WaitOutcome.PENDING
        return wait_outcome(self.state, stage, failed_step=self.step)


class BatchCreated(_ApiModel):
    batch_id: str
    rows: int


class BatchReport(_ApiModel):
    batch_id: str
    rows: int
    matched: list[str] = []
    missing: list[str] = []
    extra: list[str] = []
    checksum_mismatch: list[str] = []
    pending: list[str] = []
    complete: bool = False


UploadOutcome = Literal["uploaded", "failed"]


@dataclass(frozen=True, slots=True)
class UploadResult:
    """One file's upload, successful or not (the CLI prints one per file)."""

    path: Path
    filename: str
    size_bytes: int
    status: UploadOutcome
    slide_id: str | None = None
    sha256: str | None = None
    upload_state: UploadState | None = None
    reason: str | None = None
    """The server's or the client's short reason code (``too-large``, ``checksum-mismatch``...)."""
    error: str | None = None
    """A human-readable message when ``status`` is ``failed``."""
    bytes_sent: int = 0
    """Bytes this run sent; less than ``size_bytes`` when it resumed an earlier upload."""
    resumed_from_bytes: int = 0
    """The server's offset when this run started (0 for a fresh upload)."""
    batch_id: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "filename": self.filename,
            "slide_id": self.slide_id,
            "status": self.status,
            "error": self.error,
            "reason": self.reason,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "upload_state": self.upload_state.value if self.upload_state else None,
            "bytes_sent": self.bytes_sent,
            "resumed_from_bytes": self.resumed_from_bytes,
            "batch_id": self.batch_id,
        }


@dataclass(frozen=True, slots=True)
class WaitResult:
    """The last status seen while waiting and what it means for the awaited stage."""

    status: SlideStatus
    outcome: WaitOutcome

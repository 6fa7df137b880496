"""Test doubles for the delivery middleware: a consumed message, a sink that records dead letters
and statuses, a sleep that only adds up the backoff (no test waits for real), and a service's
delivery attempts table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import urllib3.exceptions
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from slidestream_platform.attempts import DeliveryAttemptColumns
from slidestream_platform.errors import RetryableError
from slidestream_platform.objectstore.sdk_errors import translated

SLIDE_ID = UUID("0193a0d6-0000-7000-8000-000000000001")


def store_unreachable() -> Exception:
    """What the object store adapter raises while MinIO refuses connections."""
    refused = urllib3.exceptions.NewConnectionError(None, "connection refused")  # type: ignore[arg-type]
    try:
        with translated("get", "quarantine", "lab-a/slide/original"):
            raise urllib3.exceptions.MaxRetryError(None, "/quarantine", reason=refused)  # type: ignore[arg-type]
    except RetryableError as error:
        return error
    raise AssertionError("expected a retryable error")


def database_unreachable() -> Exception:
    """What SQLAlchemy raises while PostgreSQL refuses connections (a closed port, for real)."""
    engine = create_engine("postgresql+psycopg://nobody:x@127.0.0.1:9/none?connect_timeout=1")
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError("expected the connection to be refused")


def consumed(
    topic: str = "slides.uploaded.v1",
    *,
    partition: int = 0,
    offset: int = 7,
    tenant: str = "lab-a",
    slide_id: UUID = SLIDE_ID,
    body: bytes | None = None,
) -> Any:
    """What FastStream hands the middleware (only the fields it reads); the body names the
    slide and tenant unless given."""
    if body is None:
        body = json.dumps({"slide_id": str(slide_id), "tenant": tenant}).encode()
    raw = SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        key=str(slide_id).encode(),
        headers=[],
        value=body,
    )
    return SimpleNamespace(raw_message=raw, body=body)


@dataclass
class RecordingSink:
    dead_letters: list[Any] = field(default_factory=list)
    statuses: list[Any] = field(default_factory=list)

    async def publish_dead_letter(self, record: Any) -> None:
        self.dead_letters.append(record)

    async def publish_status(self, event: Any) -> None:
        self.statuses.append(event)


@dataclass
class CountingSleep:
    """Stands in for ``asyncio.sleep``: records each backoff instead of waiting."""

    slept_s: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.slept_s.append(seconds)

    @property
    def total_s(self) -> float:
        return sum(self.slept_s)


class _ServiceTable(SQLModel, registry=registry()):
    """A service's own metadata, as each service declares it."""


class DeliveryAttemptRow(DeliveryAttemptColumns, _ServiceTable, table=True):
    __tablename__ = "svc_delivery_attempts"


attempts_metadata = _ServiceTable.metadata

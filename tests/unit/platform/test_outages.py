"""slidestream_platform.outages: which failures are a dependency down, and what /readyz is told."""

from __future__ import annotations

import sqlite3
import ssl
from pathlib import Path

import pytest
import urllib3.exceptions
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from minio.error import S3Error, ServerError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from slidestream_platform.errors import DependencyDownError, RetryableError, ScratchSpaceError
from slidestream_platform.objectstore.error_mapping import map_s3_exception
from slidestream_platform.outages import Outages, dependency_down
from tests.support.delivery import database_unreachable, store_unreachable


def _mapped(exc: BaseException) -> BaseException:
    """The platform error the object store adapter raises for ``exc``, chained to it."""
    mapped = map_s3_exception(exc, operation="get", bucket="quarantine", key="k")
    assert mapped is not None
    mapped.__cause__ = exc
    return mapped


def _s3_error(code: str) -> S3Error:
    return S3Error(None, code, "message", "/k", "req", "host")  # type: ignore[arg-type]


def _missing_table(tmp_path: Path) -> OperationalError:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM nowhere"))
    except OperationalError as error:
        return error
    finally:
        engine.dispose()
    raise AssertionError("expected no such table")


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (store_unreachable(), "object_store"),
        (_mapped(_s3_error("XMinioStorageFull")), "object_store"),
        (_mapped(_s3_error("SlowDown")), "object_store"),
        (_mapped(ServerError("bad gateway", 502)), "object_store"),
        (database_unreachable(), "database"),
        (KafkaConnectionError("no broker"), "kafka"),
        (DependencyDownError("Triton: unavailable", dependency="triton"), "triton"),
        (ScratchSpaceError("full"), "scratch"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_a_dependency_that_cannot_serve_is_named(error: BaseException, dependency: str) -> None:
    assert dependency_down(error) == dependency


def test_failures_of_the_message_itself_are_no_outage(tmp_path: Path) -> None:
    tls = urllib3.exceptions.MaxRetryError(None, "/", reason=ssl.SSLError("bad certificate"))  # type: ignore[arg-type]
    for error in (
        _mapped(_s3_error("PreconditionFailed")),  # the object changed: re-read, a few times
        _mapped(_s3_error("AccessDenied")),
        _mapped(tls),
        _missing_table(tmp_path),  # SQLite says OperationalError for a bug too
        MessageSizeTooLargeError(),
        RetryableError("the original changed while it was being read"),
        ConnectionError("reset by a peer nobody named"),
    ):
        assert dependency_down(error) is None, error


def test_sqlite_locked_is_an_outage() -> None:
    locked = OperationalError("UPDATE x", {}, sqlite3.OperationalError("database is locked"))
    assert dependency_down(locked) == "database"


def test_an_outage_is_reported_until_its_message_gets_through_or_nobody_meets_it() -> None:
    now = [0.0]
    outages = Outages(stale_after_s=100.0, clock=lambda: now[0])
    waiting, other = ("slides.qc.v1", 0, 7), ("slides.qc.v1", 1, 3)
    outages.report("triton", waiting, DependencyDownError("down"))
    outages.resolved(other)  # another partition's message says nothing about Triton
    assert outages.current() == {"triton": "DependencyDownError (a delivery waits)"}
    outages.resolved(waiting)
    assert outages.current() == {}

    outages.report("scratch", waiting, ScratchSpaceError("full"))
    now[0] = 101.0  # its message went to another consumer; nobody meets the outage any more
    assert outages.current() == {}

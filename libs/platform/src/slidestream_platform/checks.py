"""Start-up hooks and readiness checks every service wires the same way (``main.py``).

* :func:`prepare_storage`: migrate the service's tables to head, create its buckets;
* :func:`database_check`: ``SELECT 1`` on the service's engine;
* :func:`buckets_check`: a HEAD on each of the service's buckets (a missing object answers,
  an unreachable store or a wrong credential raises).

Each returns an async callable for :func:`slidestream_platform.service.service_app`; the
blocking work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine, text

from slidestream_platform.db import upgrade_to_head
from slidestream_platform.objectstore.port import ObjectStore

AsyncHook = Callable[[], Awaitable[None]]
READINESS_PROBE_KEY = ".readiness"
"""An object key that never exists: stat-ing it proves the bucket answers."""


def prepare_storage(
    engine: Engine,
    service: str,
    migrations_dir: Path,
    store: ObjectStore | None = None,
    buckets: Sequence[str] = (),
) -> AsyncHook:
    async def prepare() -> None:
        await asyncio.to_thread(upgrade_to_head, engine, service, migrations_dir)
        if store is not None and buckets:
            await asyncio.to_thread(store.ensure_buckets, list(buckets))

    return prepare


def database_check(engine: Engine) -> AsyncHook:
    def ping() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def database_ready() -> None:
        await asyncio.to_thread(ping)

    return database_ready


def storage_checks(
    engine: Engine, store: ObjectStore, buckets: Sequence[str]
) -> dict[str, AsyncHook]:
    """The readiness checks of a service with tables and buckets."""
    return {"database": database_check(engine), "object_store": buckets_check(store, buckets)}


def buckets_check(store: ObjectStore, buckets: Sequence[str]) -> AsyncHook:
    async def object_store_ready() -> None:
        for bucket in buckets:
            await asyncio.to_thread(store.stat, bucket, READINESS_PROBE_KEY)

    return object_store_ready

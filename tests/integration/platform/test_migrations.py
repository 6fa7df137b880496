"""Alembic migrations through ``slidestream_platform.db`` on PostgreSQL and SQLite.

The test-only migrations folder (``migrations_fixture/``) defines one table, ``widget``. Two
services run it side by side: on PostgreSQL each gets its own schema (with its own
``alembic_version``), on SQLite its own file, and neither sees the other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
import sqlalchemy as sa

from slidestream_platform.db import (
    DatabaseSettings,
    current_revision,
    downgrade_to,
    head_revision,
    make_engine,
    schema_name,
    session_scope,
    upgrade_to_head,
)

pytestmark = pytest.mark.integration

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations_fixture"


@dataclass(frozen=True)
class Backend:
    name: str
    settings: DatabaseSettings


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", DatabaseSettings(url=None, data_dir=tmp_path))
        return
    stack_env: dict[str, str] = request.getfixturevalue("stack_env")
    yield Backend("postgresql", DatabaseSettings(url=stack_env["POSTGRES_URL"]))


@pytest.fixture
def services(backend: Backend) -> Iterator[tuple[str, str]]:
    """Two service names unique to this test, their schemas dropped afterwards on PostgreSQL."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"it_svc_a_{suffix}", f"it_svc_b_{suffix}")
    yield names
    if backend.name == "postgresql":
        engine = make_engine(backend.settings, names[0])
        with engine.begin() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema_name(name)}" CASCADE'))
        engine.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_is_idempotent_and_downgrade_reverts(
    backend: Backend, services: tuple[str, str]
) -> None:
    service = services[0]
    engine = make_engine(backend.settings, service)
    try:
        head = head_revision(MIGRATIONS_DIR)
        assert head == "0001"
        assert current_revision(engine, service) is None

        upgrade_to_head(engine, service, MIGRATIONS_DIR)
        assert current_revision(engine, service) == head
        assert {"widget", "alembic_version"} <= table_names(engine)

        upgrade_to_head(engine, service, MIGRATIONS_DIR)  # a second start: nothing to do
        assert current_revision(engine, service) == head

        downgrade_to(engine, service, MIGRATIONS_DIR, "base")
        assert current_revision(engine, service) is None
        assert "widget" not in table_names(engine)

        upgrade_to_head(engine, service, MIGRATIONS_DIR)  # and back up again
        assert current_revision(engine, service) == head
    finally:
        engine.dispose()


def test_two_services_do_not_collide(backend: Backend, services: tuple[str, str]) -> None:
    engines = {name: make_engine(backend.settings, name) for name in services}
    try:
        for name, engine in engines.items():
            upgrade_to_head(engine, name, MIGRATIONS_DIR)
        first, second = services
        with session_scope(engines[first]) as session:
            session.execute(sa.text("INSERT INTO widget (name) VALUES ('only-in-a')"))
        with engines[second].connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM widget")).scalar() == 0
        with engines[first].connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM widget")).scalars().all() == ["only-in-a"]

        # Reverting one service leaves the other at head.
        downgrade_to(engines[first], first, MIGRATIONS_DIR)
        assert current_revision(engines[first], first) is None
        assert current_revision(engines[second], second) == "0001"
        assert "widget" in table_names(engines[second])
    finally:
        for engine in engines.values():
            engine.dispose()


def test_postgres_tables_live_in_the_service_schema(stack_env: dict[str, str]) -> None:
    service = f"it_schema_{uuid.uuid4().hex[:8]}"
    settings = DatabaseSettings(url=stack_env["POSTGRES_URL"])
    # Given a URL instead of an engine, the helpers make and dispose of their own engine.
    upgrade_to_head(settings.url or "", service, MIGRATIONS_DIR)
    engine = make_engine(settings, service)
    try:
        inspector = sa.inspect(engine)
        assert set(inspector.get_table_names(schema=service)) == {"widget", "alembic_version"}
        assert "widget" not in inspector.get_table_names(schema="public")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_schema()")).scalar() == service
        assert current_revision(settings.url or "", service) == "0001"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{service}" CASCADE'))
        engine.dispose()


def test_sqlite_gives_each_service_its_own_file(tmp_path: Path) -> None:
    settings = DatabaseSettings(data_dir=tmp_path)
    for service in ("alpha", "beta"):
        engine = make_engine(settings, service)
        upgrade_to_head(engine, service, MIGRATIONS_DIR)
        engine.dispose()
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["alpha.db", "beta.db"]


def test_replicas_migrating_at_once_serialize(stack_env: dict[str, str]) -> None:
    """Replicas that start together race to migrate; the advisory lock makes them take turns."""
    service = f"it_race_{uuid.uuid4().hex[:8]}"
    url = stack_env["POSTGRES_URL"]
    replicas = 4
    with ThreadPoolExecutor(max_workers=replicas) as pool:
        futures = [
            pool.submit(upgrade_to_head, url, service, MIGRATIONS_DIR) for _ in range(replicas)
        ]
        for future in futures:
            future.result()
    assert current_revision(url, service) == "0001"
    engine = make_engine(DatabaseSettings(url=url), service)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{service}" CASCADE'))
    engine.dispose()

"""Engine, sessions and migrations on SQLite (the embedded default), in a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from slidestream_platform.db import (
    DatabaseSettings,
    current_revision,
    database_url,
    downgrade_to,
    head_revision,
    is_postgres,
    make_engine,
    make_revision,
    schema_name,
    session_scope,
    upgrade_to_head,
    write_env_py,
)


@pytest.fixture
def settings(tmp_path: Path) -> DatabaseSettings:
    return DatabaseSettings(data_dir=tmp_path / "data")


@pytest.fixture
def engine(settings: DatabaseSettings) -> Iterator[sa.Engine]:
    engine = make_engine(settings, "unit")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            sa.text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent(id))"
            )
        )
    yield engine
    engine.dispose()


@pytest.mark.parametrize("service", ["catalog", "deid", "svc_2", "dead-letter"])
def test_service_names_become_identifiers(service: str) -> None:
    assert schema_name(service) == service.replace("-", "_")


@pytest.mark.parametrize("service", ["", "Catalog", "1st", "a b", 'x"; drop', "x" * 64])
def test_unsafe_service_names_are_refused(service: str) -> None:
    with pytest.raises(ValueError, match="service name"):
        schema_name(service)


def test_no_url_means_one_sqlite_file_per_service(settings: DatabaseSettings) -> None:
    assert database_url(settings, "catalog").database == str(settings.data_dir / "catalog.db")
    assert database_url(settings, "deid").database == str(settings.data_dir / "deid.db")


def test_postgres_urls_use_psycopg_3() -> None:
    for raw in ("postgresql://u:p@h:5432/db", "postgres://u:p@h/db", "postgresql+psycopg://h/db"):
        url = database_url(DatabaseSettings(url=raw), "catalog")
        assert url.drivername == "postgresql+psycopg"
        assert is_postgres(url)


def test_sqlite_url_may_name_a_file_per_service(tmp_path: Path) -> None:
    settings = DatabaseSettings(url=f"sqlite:///{tmp_path}/{{service}}.db")
    assert database_url(settings, "qc").database == f"{tmp_path}/qc.db"
    assert not is_postgres(database_url(settings, "qc"))


def test_settings_are_frozen(settings: DatabaseSettings) -> None:
    with pytest.raises(ValueError, match="frozen"):
        settings.url = "sqlite://"  # type: ignore[misc]


def test_sqlite_engine_creates_its_folder_and_sets_pragmas(
    settings: DatabaseSettings, engine: sa.Engine
) -> None:
    assert (settings.data_dir / "unit.db").is_file()
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 5000


def test_foreign_keys_are_enforced(engine: sa.Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.execute(sa.text("INSERT INTO child (id, pid) VALUES (1, 42)"))


def test_session_scope_commits_on_success(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        session.execute(sa.text("INSERT INTO parent (id) VALUES (1)"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM parent")).scalar() == 1


def test_session_scope_rolls_back_on_error(engine: sa.Engine) -> None:
    class DeliberateError(Exception):
        pass

    with pytest.raises(DeliberateError), session_scope(engine) as session:
        session.execute(sa.text("INSERT INTO parent (id) VALUES (7)"))
        raise DeliberateError
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM parent")).scalar() == 0


def test_scaffold_autogenerate_upgrade_and_downgrade(
    tmp_path: Path, settings: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "unit_db_models.py").write_text(
        textwrap.dedent(
            """
            import sqlalchemy as sa

            metadata = sa.MetaData()
            sa.Table("note", metadata, sa.Column("id", sa.Integer, primary_key=True))
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(package))
    migrations = tmp_path / "migrations"
    write_env_py(migrations, service="notes", metadata_module="unit_db_models")
    write_env_py(migrations, service="notes", metadata_module="ignored")  # idempotent
    assert "from unit_db_models import metadata" in (migrations / "env.py").read_text()

    engine = make_engine(settings, "notes")
    make_revision(engine, "notes", migrations, "create note")
    head = head_revision(migrations)
    assert head is not None
    assert current_revision(engine, "notes") is None

    upgrade_to_head(engine, "notes", migrations)
    upgrade_to_head(engine, "notes", migrations)  # already at head: a no-op
    assert current_revision(engine, "notes") == head
    assert "note" in sa.inspect(engine).get_table_names()

    downgrade_to(engine, "notes", migrations)
    assert current_revision(engine, "notes") is None
    assert "note" not in sa.inspect(engine).get_table_names()
    engine.dispose()

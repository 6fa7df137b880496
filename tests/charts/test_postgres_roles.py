"""The in-chart PostgreSQL's roles, for real: the roles Job's script, as the chart renders it, run
against a private PostgreSQL server. Each service's role logs in with its Secret's password,
migrates its own schema, and can neither read another service's schema nor create anything
outside its own; tables an earlier release made as the superuser become the service's."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import ProgrammingError

from slidestream_deid import main as deid_main
from slidestream_platform.db import current_revision, head_revision, upgrade_to_head
from slidestream_upload import main as upload_main
from tests.support.charts import container, jobs, of_kind, render
from tests.support.postgres_server import PostgresServer, private_postgres_server

SERVICES = ("catalog", "convert", "deid", "inference", "qc", "upload")
DATABASE = "slidestream"
"""The in-chart server's database (POSTGRES_DB)."""


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with private_postgres_server() as running:
        admin = sa.create_engine(running.url(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
        admin.dispose()
        yield running


@pytest.fixture(scope="module")
def chart(helm: Path) -> list[dict[str, Any]]:
    return render(helm, **{"database.existingSecret": "", "inChart.postgres.enabled": True})


def passwords(docs: list[dict[str, Any]]) -> dict[str, str]:
    secrets = of_kind(docs, "Secret")
    return {n: secrets[f"rel-slidestream-postgres-{n}"]["stringData"]["password"] for n in SERVICES}


def run_roles_job(docs: list[dict[str, Any]], server: PostgresServer, tmp_path: Path) -> None:
    """roles.sh from the ConfigMap, with the Job's variables: PG* for the superuser, each
    service's password as its Secret would give it."""
    [job] = jobs(docs, "rel-slidestream-postgres-roles-")
    files = of_kind(docs, "ConfigMap")["rel-slidestream-postgres-roles"]["data"]
    mounted = tmp_path / "etc"
    mounted.mkdir(exist_ok=True)
    for name, text in files.items():
        (mounted / name).write_text(text)
    env = server.client_env(DATABASE)
    secret_env = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(job)["env"] if "valueFrom" in e
    }
    for name, password in passwords(docs).items():
        ref = secret_env[f"PASSWORD_{name.upper()}"]
        assert ref == {"name": f"rel-slidestream-postgres-{name}", "key": "password"}
        env[f"PASSWORD_{name.upper()}"] = password
    done = subprocess.run(
        ["sh", str(mounted / "roles.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def as_role(server: PostgresServer, docs: list[dict[str, Any]], name: str) -> sa.Engine:
    return sa.create_engine(
        server.url(f"slidestream_{name}", passwords(docs)[name], DATABASE), poolclass=sa.NullPool
    )


def denied(engine: sa.Engine, sql: str) -> bool:
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(sql))
    except ProgrammingError as error:
        return "permission denied" in str(error.orig)
    return False


def test_each_role_migrates_its_own_schema_and_reaches_nothing_else(
    chart: list[dict[str, Any]], server: PostgresServer, tmp_path: Path
) -> None:
    superuser = sa.create_engine(server.url(database=DATABASE), poolclass=sa.NullPool)
    with superuser.begin() as connection:  # what an earlier release left: the superuser's table
        connection.execute(sa.text('CREATE SCHEMA "qc"'))
        connection.execute(sa.text('CREATE TABLE "qc".leftover (id serial PRIMARY KEY)'))

    run_roles_job(chart, server, tmp_path)
    run_roles_job(chart, server, tmp_path)  # every upgrade runs it again

    for name, main in (("upload", upload_main), ("deid", deid_main)):
        role_url = server.url(f"slidestream_{name}", passwords(chart)[name], DATABASE)
        upgrade_to_head(role_url, name, main.MIGRATIONS_DIR)
        assert current_revision(role_url, name) == head_revision(main.MIGRATIONS_DIR)

    upload = as_role(server, chart, "upload")
    assert denied(upload, 'SELECT * FROM "deid".alembic_version')
    assert denied(upload, "CREATE TABLE public.stray (id int)")
    assert denied(upload, "CREATE SCHEMA stray")
    assert denied(upload, 'CREATE TABLE "qc".stray (id int)')
    with upload.begin() as connection:  # its own schema is its to change
        connection.execute(sa.text('CREATE TABLE "upload".scratch (id int)'))
        connection.execute(sa.text('DROP TABLE "upload".scratch'))

    qc = as_role(server, chart, "qc")
    with qc.begin() as connection:
        connection.execute(sa.text('INSERT INTO "qc".leftover DEFAULT VALUES'))
        connection.execute(sa.text('ALTER TABLE "qc".leftover ADD COLUMN note text'))
    with superuser.connect() as connection:
        owner = connection.execute(
            sa.text("SELECT tableowner FROM pg_tables WHERE schemaname = 'qc'")
        ).scalar_one()
        connect_to_public = connection.execute(
            sa.text("SELECT has_database_privilege('public', :db, 'CONNECT')"), {"db": DATABASE}
        ).scalar_one()
    assert owner == "slidestream_qc"
    assert connect_to_public is False
    for engine in (superuser, upload, qc):
        engine.dispose()


def test_a_login_allowed_to_create_schemas_still_gets_a_missing_one(
    server: PostgresServer,
) -> None:
    """The local stack's single login: migrations create the schema it lacks."""
    superuser_url = server.url(database=DATABASE)
    upgrade_to_head(superuser_url, "fresh", upload_main.MIGRATIONS_DIR)
    assert current_revision(superuser_url, "fresh") == head_revision(upload_main.MIGRATIONS_DIR)


def test_a_role_logs_in_with_its_own_password_only(
    chart: list[dict[str, Any]], server: PostgresServer, tmp_path: Path
) -> None:
    run_roles_job(chart, server, tmp_path)
    wrong = sa.create_engine(
        server.url("slidestream_upload", passwords(chart)["deid"], DATABASE), poolclass=sa.NullPool
    )
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        wrong.connect()
    wrong.dispose()

"""Database engine, sessions and migrations shared by every service (SQLModel + Alembic).

Each service owns its tables; nothing joins across services.

* **PostgreSQL** (``DatabaseSettings.url`` set): one database, one *schema per service*, named
  after the service (``deid``, ``catalog``...). Models declare no schema; the engine sets
  ``search_path`` to the service's schema on every connection (libpq ``options=-c search_path=…``),
  so the same models, raw SQL and Alembic autogenerate work unchanged on both backends, and a
  service cannot silently read another's tables (``public`` is not on the path). Alembic's
  ``alembic_version`` table lives inside that schema, which migrations create if missing.
  In production each service logs in as its own role, which owns its schema and has no other
  grant (no CREATE on the database): migrations then find the schema and create nothing else.
  We chose ``search_path`` over ``schema_translate_map`` because the latter does not reach
  ``text()`` SQL nor reflection (autogenerate), and over ``__table_args__ = {"schema": …}``
  because SQLite would read that as an attached database.
* **SQLite** (no URL: the embedded default): one file per service,
  ``<data_dir>/<service>.db``, so there is no schema to pick. Connections run with
  ``journal_mode=WAL`` (readers do not block the writer), ``foreign_keys=ON`` (off by default
  in SQLite) and a busy timeout. A SQLite URL may contain ``{service}`` to keep one file per
  service.

Migrations: each service keeps ``src/<pkg>/migrations/`` with ``env.py`` and ``versions/``;
``env.py`` is two lines (see :func:`write_env_py`)::

    from slidestream_platform.db import run_alembic_env
    from <pkg>.models import metadata

    run_alembic_env(metadata)

and the service calls :func:`upgrade_to_head` at start (no ``alembic.ini`` needed). Give each
service its own ``MetaData`` (``class Base(SQLModel, registry=registry())``) so that a process
that imports two services' models does not mix their tables.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlmodel import Session

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the migration functions: settings (and so every CLI start) import this
# module, and Alembic's import alone costs about a second on small machines.

#: Services are named in lower-case snake case; the name becomes a PostgreSQL schema and a file
#: name, so it must be a plain identifier (PostgreSQL's limit is 63 bytes).
_SERVICE_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: How long SQLite waits for a lock before failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS: Final = 5_000
#: The only PostgreSQL driver we ship (``psycopg[binary]``, psycopg 3).
POSTGRES_DRIVER: Final = "postgresql+psycopg"
_POSTGRES_SCHEMES: Final = frozenset({"postgres", "postgresql", "postgresql+psycopg"})
#: Alembic attribute that carries the connection from :func:`upgrade_to_head` to ``env.py``.
_ATTR_CONNECTION: Final = "connection"
#: Main option read by ``env.py`` when the Alembic CLI runs it with a plain ``sqlalchemy.url``.
_OPTION_SERVICE: Final = "slidestream_service"

_ENV_PY_TEMPLATE: Final = '''"""Alembic environment of the {service} service."""

{imports}

run_alembic_env({metadata_name})
'''

# Alembic's template for new revision files (``alembic revision``), trimmed to what we use.
_SCRIPT_MAKO: Final = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

% if "sa." in (upgrades or "") + (downgrades or ""):
import sqlalchemy as sa
% endif
% if "sqlmodel." in (upgrades or "") + (downgrades or ""):
import sqlmodel
% endif
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


class DatabaseSettings(BaseModel):
    """Where a service's tables live (composed into the service settings by the base)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``postgresql+psycopg://user:pass@host:port/db`` (``postgresql://`` is accepted too), or
    #: ``None`` for the embedded SQLite file ``<data_dir>/<service>.db``.
    url: str | None = None
    data_dir: Path = Path(".local/data")


def schema_name(service: str) -> str:
    """The PostgreSQL schema (and SQLite file stem) of ``service``; hyphens become underscores."""
    name = service.replace("-", "_")
    if not _SERVICE_NAME_RE.match(name):
        msg = f"service name {service!r} must match {_SERVICE_NAME_RE.pattern} (after - → _)"
        raise ValueError(msg)
    return name


def database_url(settings: DatabaseSettings, service: str) -> URL:
    """The SQLAlchemy URL of ``service``'s database."""
    schema = schema_name(service)
    if settings.url is None:
        return make_url(f"sqlite:///{settings.data_dir / f'{schema}.db'}")
    url = make_url(settings.url.replace("{service}", schema))
    if url.drivername in _POSTGRES_SCHEMES:
        url = url.set(drivername=POSTGRES_DRIVER)
    return url


def is_postgres(target: URL | Engine | Connection) -> bool:
    """Whether the URL, engine or connection speaks PostgreSQL."""
    if isinstance(target, URL):
        return target.get_backend_name() == "postgresql"
    return target.dialect.name == "postgresql"


def make_engine(settings: DatabaseSettings, service: str) -> Engine:
    """An engine whose connections see only ``service``'s tables (see the module docstring)."""
    schema = schema_name(service)
    url = database_url(settings, service)
    if is_postgres(url):
        return create_engine(
            url,
            pool_pre_ping=True,  # survive database restarts and idle-connection reaping
            connect_args={
                # Validated identifier, so no quoting needed; see the module docstring.
                "options": f"-c search_path={schema}",
                "application_name": f"slidestream-{schema}",
            },
        )
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # synchronous stays at SQLite's default (FULL): Kafka offsets are committed after our
        # writes, so a commit must survive a power loss, not just a process crash.
    finally:
        cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises.

    ``expire_on_commit=False`` keeps loaded objects readable after the block (they are plain
    values to handlers; nothing lazy-loads across the scope).
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# -- migrations -------------------------------------------------------------------------------


def _engine_for(engine_or_url: Engine | str, service: str) -> tuple[Engine, bool]:
    """The engine to migrate with, and whether we made it (and so must dispose of it)."""
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    return make_engine(DatabaseSettings(url=engine_or_url), service), True


def _advisory_lock_key(schema: str) -> int:
    # pg_advisory_xact_lock takes a signed 64-bit key; derive a stable one from the schema.
    digest = hashlib.sha256(f"slidestream.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _prepare(connection: Connection, schema: str) -> None:
    """Serialize concurrent migrators of one schema and make sure the schema exists."""
    if not is_postgres(connection):
        return
    # Replicas starting together would race on CREATE SCHEMA and on the version table; the
    # transaction-scoped advisory lock makes the second wait and then find nothing to do.
    lock_key = _advisory_lock_key(schema)
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
    # Only when missing: CREATE SCHEMA checks the database's CREATE privilege before IF NOT
    # EXISTS, and a service's own role (which owns its schema, made for it by the chart or an
    # operator) has no such privilege. The lock above makes check-then-create race-free.
    found = connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    ).first()
    if found is None:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Whatever engine we were given, migrate inside the service's schema only.
    connection.execute(text(f'SET LOCAL search_path TO "{schema}"'))


def _alembic_config(migrations_dir: Path, connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes[_ATTR_CONNECTION] = connection
    return config


def _run_command(
    engine_or_url: Engine | str, service: str, migrations_dir: Path, action: str, revision: str
) -> None:
    from alembic import command

    schema = schema_name(service)
    engine, owned = _engine_for(engine_or_url, service)
    try:
        with engine.begin() as connection:
            _prepare(connection, schema)
            config = _alembic_config(migrations_dir, connection)
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        if owned:
            engine.dispose()


def upgrade_to_head(engine_or_url: Engine | str, service: str, migrations_dir: Path) -> None:
    """Apply every pending migration of ``service`` (a no-op when already at head).

    ``engine_or_url``: an engine from :func:`make_engine`, or a URL (then an engine is made and
    disposed of here). On PostgreSQL the service's schema is created if missing.
    """
    _run_command(engine_or_url, service, migrations_dir, "upgrade", "head")


def downgrade_to(
    engine_or_url: Engine | str, service: str, migrations_dir: Path, revision: str = "base"
) -> None:
    """Revert ``service``'s migrations down to ``revision`` (``"base"``: all of them)."""
    _run_command(engine_or_url, service, migrations_dir, "downgrade", revision)


def current_revision(engine_or_url: Engine | str, service: str) -> str | None:
    """The revision ``service``'s database is at, ``None`` before the first migration."""
    from alembic.runtime.migration import MigrationContext

    schema = schema_name(service)
    engine, owned = _engine_for(engine_or_url, service)
    try:
        with engine.connect() as connection:
            opts = {"version_table_schema": schema} if is_postgres(connection) else {}
            return MigrationContext.configure(connection, opts=opts).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def head_revision(migrations_dir: Path) -> str | None:
    """The head revision of a migrations folder (for readiness checks: current == head)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return ScriptDirectory.from_config(config).get_current_head()


def make_revision(
    engine_or_url: Engine | str,
    service: str,
    migrations_dir: Path,
    message: str,
    *,
    autogenerate: bool = True,
) -> None:
    """Write a new revision file into ``migrations_dir/versions`` (Alembic's ``revision``).

    With ``autogenerate`` the database (brought to head first) is compared with the models'
    metadata that ``env.py`` passes to :func:`run_alembic_env`.
    """
    from alembic import command

    schema = schema_name(service)
    _write_if_missing(migrations_dir / "script.py.mako", _SCRIPT_MAKO)  # Alembic's template
    engine, owned = _engine_for(engine_or_url, service)
    try:
        with engine.begin() as connection:
            _prepare(connection, schema)
            config = _alembic_config(migrations_dir, connection)
            # Format new revision files so they pass the repository's ruff checks.
            config.set_section_option("post_write_hooks", "hooks", "ruff_fix, ruff_format")
            config.set_section_option("post_write_hooks", "ruff_fix.type", "module")
            config.set_section_option("post_write_hooks", "ruff_fix.module", "ruff")
            config.set_section_option(
                "post_write_hooks", "ruff_fix.options", "check --fix REVISION_SCRIPT_FILENAME"
            )
            config.set_section_option("post_write_hooks", "ruff_format.type", "module")
            config.set_section_option("post_write_hooks", "ruff_format.module", "ruff")
            config.set_section_option(
                "post_write_hooks", "ruff_format.options", "format REVISION_SCRIPT_FILENAME"
            )
            command.revision(config, message=message, autogenerate=autogenerate)
    finally:
        if owned:
            engine.dispose()


def run_alembic_env(target_metadata: MetaData) -> None:
    """The whole body of a service's ``migrations/env.py``.

    Called by Alembic while it executes ``env.py``: from :func:`upgrade_to_head` and friends
    (the connection, already inside the service's schema, comes through
    ``config.attributes``), or from the ``alembic`` CLI
    with ``sqlalchemy.url`` and ``slidestream_service`` set in its ini file.
    """
    from alembic import context  # a proxy that only works while Alembic runs env.py

    config = context.config
    connection: Connection | None = config.attributes.get(_ATTR_CONNECTION)
    if connection is not None:
        _configure_and_run(context, connection, target_metadata)
        return
    url = config.get_main_option("sqlalchemy.url")
    service = config.get_main_option(_OPTION_SERVICE)
    if url is None or service is None:
        msg = "env.py needs sqlalchemy.url and slidestream_service (or run via upgrade_to_head)"
        raise RuntimeError(msg)
    schema = schema_name(service)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            if is_postgres(make_url(url)):
                # The emitted script sets up the schema exactly as online migrations do.
                context.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                context.execute(f'SET LOCAL search_path TO "{schema}"')
            context.run_migrations()
        return
    engine = make_engine(DatabaseSettings(url=url), service)
    try:
        with engine.begin() as conn:
            _prepare(conn, schema)
            _configure_and_run(context, conn, target_metadata)
    finally:
        engine.dispose()


def _configure_and_run(context: Any, connection: Connection, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # No version_table_schema: search_path already makes the service's schema the default,
        # so alembic_version lands there, and autogenerate (which reflects the default schema)
        # recognises it as its own table instead of proposing to drop it.
        # Batch mode lets ALTERs run on SQLite (table copy) and is a plain ALTER on PostgreSQL.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def write_env_py(
    migrations_dir: Path, *, service: str, metadata_module: str, metadata_name: str = "metadata"
) -> None:
    """Scaffold a service's migrations folder: ``env.py``, ``script.py.mako``, ``versions/``.

    Existing files are left alone, so running it twice is harmless.
    """
    schema_name(service)  # validate early
    migrations_dir.mkdir(parents=True, exist_ok=True)
    (migrations_dir / "versions").mkdir(exist_ok=True)
    # One import block in module order, as ruff's isort expects of first-party imports.
    imports = sorted(
        [
            f"from {metadata_module} import {metadata_name}",
            "from slidestream_platform.db import run_alembic_env",
        ]
    )
    env_py = _ENV_PY_TEMPLATE.format(
        service=service, imports="\n".join(imports), metadata_name=metadata_name
    )
    _write_if_missing(migrations_dir / "env.py", env_py)
    _write_if_missing(migrations_dir / "script.py.mako", _SCRIPT_MAKO)


def _write_if_missing(path: Path, content: str) -> None:
    if not path.exists():
        path.write_text(content, encoding="utf-8")

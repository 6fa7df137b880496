"""PostgreSQL from Debian's packages, run from a private data directory.

Postgres refuses to run as root, so when we are root its files belong to, and it runs as, the
unprivileged ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

from rich.console import Console

from slidestream_devstack import versions
from slidestream_devstack.builds import run_build
from slidestream_devstack.errors import StackError
from slidestream_devstack.part import LaunchSpec, Part, StackContext, unprivileged_user
from slidestream_devstack.ports import LOOPBACK, POSTGRES_PORT
from slidestream_devstack.process import child_env

BIN_DIR: Final = Path(f"/usr/lib/postgresql/{versions.POSTGRES_MAJOR}/bin")
OS_USER: Final = "postgres"
DATABASE: Final = "slidestream"
ROLE: Final = "slidestream"
PROBE_TIMEOUT_S: Final = 5


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A PostgreSQL server of our own: its data directory, its loopback port, the password of
    :data:`ROLE`. Shared by the stack's part and the fault suite, which runs a second one."""

    data_dir: Path
    port: int
    password: str

    def _chown_to_server_user(self, path: Path) -> None:
        user = unprivileged_user(OS_USER)
        if user is not None:
            shutil.chown(path, user=user, group=user)

    def initdb(self, *, console: Console, log_path: Path) -> None:
        """Create the data directory (owned by the server's user), unless it exists."""
        data = self.data_dir
        if (data / "PG_VERSION").exists():
            return
        home = data.parent
        home.mkdir(parents=True, exist_ok=True)
        self._chown_to_server_user(home)
        data.mkdir(mode=0o700, exist_ok=True)
        self._chown_to_server_user(data)
        password_file = home / "initdb-password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        self._chown_to_server_user(password_file)
        try:
            run_build(
                [
                    *_as_server_user(),
                    str(BIN_DIR / "initdb"),
                    f"--pgdata={data}",
                    f"--username={ROLE}",
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                description="Initialising the Postgres data directory",
                console=console,
                log_path=log_path,
            )
        finally:
            password_file.unlink(missing_ok=True)

    def argv(self) -> list[str]:
        return [
            str(BIN_DIR / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"port={self.port}",
            # No Unix socket: the system's socket directory may belong to a packaged cluster.
            "-c",
            "unix_socket_directories=",
        ]

    def is_ready(self) -> bool:
        completed = subprocess.run(
            [
                str(BIN_DIR / "pg_isready"),
                "--quiet",
                f"--host={LOOPBACK}",
                f"--port={self.port}",
                f"--timeout={PROBE_TIMEOUT_S}",
            ],
            check=False,
        )
        return completed.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        completed = subprocess.run(
            [
                str(BIN_DIR / "psql"),
                f"--host={LOOPBACK}",
                f"--port={self.port}",
                f"--username={ROLE}",
                f"--dbname={database}",
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                "--command",
                sql,
            ],
            env=child_env({"PGPASSWORD": self.password}),
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise StackError(f"psql failed: {completed.stderr.strip()}")
        return completed.stdout.strip()

    def ensure_database(self) -> None:
        # DATABASE and ROLE are constants of this module, not input: no injection surface.
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")  # noqa: S608
        if exists != "1":
            self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")

    def urls(self, host_port: str | None = None) -> dict[str, str]:
        """``DATABASE_URL`` (SQLAlchemy's) and ``POSTGRES_URL`` (libpq's) of the database, at
        ``host_port`` (a proxy in front of the server) or the server's own address."""
        authority = f"{ROLE}:{self.password}@{host_port or f'{LOOPBACK}:{self.port}'}"
        return {
            "DATABASE_URL": f"postgresql+psycopg://{authority}/{DATABASE}",
            "POSTGRES_URL": f"postgresql://{authority}/{DATABASE}",
        }


def _as_server_user() -> list[str]:
    user = unprivileged_user(OS_USER)
    return [] if user is None else ["runuser", "-u", user, "--"]


class PostgresPart(Part):
    name: ClassVar[str] = "postgres"
    ports: ClassVar[tuple[int, ...]] = (POSTGRES_PORT,)
    # Fast shutdown: SIGTERM would wait for every client (a forgotten test session) to disconnect.
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT

    def unavailable_reason(self, ctx: StackContext) -> str | None:
        return postgres_unavailable_reason()

    def _server(self, ctx: StackContext) -> PostgresServer:
        return PostgresServer(
            ctx.paths.part_dir(self.name) / "data", POSTGRES_PORT, ctx.credentials.postgres_password
        )

    def prepare(self, ctx: StackContext) -> None:
        self._server(ctx).initdb(console=ctx.console, log_path=ctx.paths.log_file(self.name))

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        return LaunchSpec(
            argv=self._server(ctx).argv(),
            cwd=ctx.paths.part_dir(self.name),
            user=unprivileged_user(OS_USER),
        )

    def is_ready(self, ctx: StackContext) -> bool:
        return self._server(ctx).is_ready()

    def provision(self, ctx: StackContext) -> None:
        self._server(ctx).ensure_database()

    def endpoint(self, ctx: StackContext) -> str:
        return f"{LOOPBACK}:{POSTGRES_PORT}"

    def env(self, ctx: StackContext) -> dict[str, str]:
        return self._server(ctx).urls()


def postgres_unavailable_reason() -> str | None:
    """Why no PostgreSQL server can run here (then the stack uses SQLite), or None."""
    if not (BIN_DIR / "postgres").exists():
        return f"{BIN_DIR}/postgres missing (apt-get install postgresql-{versions.POSTGRES_MAJOR})"
    user = unprivileged_user(OS_USER)
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root and there is no {user!r} user to run Postgres as"
    return None

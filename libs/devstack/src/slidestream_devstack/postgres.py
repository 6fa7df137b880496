"""PostgreSQL from Debian's packages, run from a private data directory.

Postgres refuses to run as root, so when we are root its files belong to, and it runs as, the
unprivileged ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import pwd
import shutil
import signal
import subprocess
from pathlib import Path
from typing import ClassVar, Final

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


class PostgresPart(Part):
    name: ClassVar[str] = "postgres"
    ports: ClassVar[tuple[int, ...]] = (POSTGRES_PORT,)
    # Fast shutdown: SIGTERM would wait for every client (a forgotten test session) to disconnect.
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT

    def unavailable_reason(self, ctx: StackContext) -> str | None:
        if not (BIN_DIR / "postgres").exists():
            return (
                f"{BIN_DIR}/postgres missing (apt-get install postgresql-{versions.POSTGRES_MAJOR})"
            )
        user = unprivileged_user(OS_USER)
        if user is not None:
            try:
                pwd.getpwnam(user)
            except KeyError:
                return f"running as root and there is no {user!r} user to run Postgres as"
        return None

    def _home(self, ctx: StackContext) -> Path:
        return ctx.paths.part_dir(self.name)

    def _data(self, ctx: StackContext) -> Path:
        return self._home(ctx) / "data"

    def _chown_to_server_user(self, path: Path) -> None:
        user = unprivileged_user(OS_USER)
        if user is not None:
            shutil.chown(path, user=user, group=user)

    def prepare(self, ctx: StackContext) -> None:
        data = self._data(ctx)
        if (data / "PG_VERSION").exists():
            return
        home = self._home(ctx)
        home.mkdir(parents=True, exist_ok=True)
        self._chown_to_server_user(home)
        data.mkdir(mode=0o700, exist_ok=True)
        self._chown_to_server_user(data)
        password_file = home / "initdb-password"
        password_file.write_text(ctx.credentials.postgres_password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        self._chown_to_server_user(password_file)
        try:
            run_build(
                [
                    *self._as_server_user(),
                    str(BIN_DIR / "initdb"),
                    f"--pgdata={data}",
                    f"--username={ROLE}",
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                description="Initialising the Postgres data directory",
                console=ctx.console,
                log_path=ctx.paths.log_file(self.name),
            )
        finally:
            password_file.unlink(missing_ok=True)

    def _as_server_user(self) -> list[str]:
        user = unprivileged_user(OS_USER)
        return [] if user is None else ["runuser", "-u", user, "--"]

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        return LaunchSpec(
            argv=[
                str(BIN_DIR / "postgres"),
                "-D",
                str(self._data(ctx)),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                f"port={POSTGRES_PORT}",
                # No Unix socket: the system's socket directory may belong to a packaged cluster.
                "-c",
                "unix_socket_directories=",
            ],
            cwd=self._home(ctx),
            user=unprivileged_user(OS_USER),
        )

    def is_ready(self, ctx: StackContext) -> bool:
        completed = subprocess.run(
            [
                str(BIN_DIR / "pg_isready"),
                "--quiet",
                f"--host={LOOPBACK}",
                f"--port={POSTGRES_PORT}",
                f"--timeout={PROBE_TIMEOUT_S}",
            ],
            check=False,
        )
        return completed.returncode == 0

    def _psql(self, ctx: StackContext, sql: str, database: str = "postgres") -> str:
        completed = subprocess.run(
            [
                str(BIN_DIR / "psql"),
                f"--host={LOOPBACK}",
                f"--port={POSTGRES_PORT}",
                f"--username={ROLE}",
                f"--dbname={database}",
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                "--command",
                sql,
            ],
            env=child_env({"PGPASSWORD": ctx.credentials.postgres_password}),
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise StackError(f"psql failed: {completed.stderr.strip()}")
        return completed.stdout.strip()

    def provision(self, ctx: StackContext) -> None:
        # DATABASE and ROLE are constants of this module, not input: no injection surface.
        exists = self._psql(ctx, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")  # noqa: S608
        if exists != "1":
            self._psql(ctx, f"CREATE DATABASE {DATABASE} OWNER {ROLE}")

    def endpoint(self, ctx: StackContext) -> str:
        return f"{LOOPBACK}:{POSTGRES_PORT}"

    def env(self, ctx: StackContext) -> dict[str, str]:
        authority = f"{ROLE}:{ctx.credentials.postgres_password}@{LOOPBACK}:{POSTGRES_PORT}"
        return {
            "DATABASE_URL": f"postgresql+psycopg://{authority}/{DATABASE}",
            "POSTGRES_URL": f"postgresql://{authority}/{DATABASE}",
        }

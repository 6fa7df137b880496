"""A private PostgreSQL server for one test: Debian's binaries (the local stack's), a data
directory of its own, a free loopback port, stopped and removed afterwards. For tests that
create roles and change what PUBLIC may do: roles belong to a whole server, so the stack's
shared one is not the place."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slidestream_devstack.part import unprivileged_user
from slidestream_devstack.ports import LOOPBACK
from slidestream_devstack.postgres import BIN_DIR, OS_USER
from slidestream_devstack.process import child_env
from tests.support.milvus import free_port

SUPERUSER = "admin"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PostgresServer:
    port: int
    password: str

    def url(self, user: str = SUPERUSER, password: str | None = None, database: str = "") -> str:
        secret = self.password if password is None else password
        return f"postgresql+psycopg://{user}:{secret}@{LOOPBACK}:{self.port}/{database or user}"

    def client_env(self, database: str) -> dict[str, str]:
        """libpq's variables for ``psql`` and ``pg_isready`` as the superuser (a Job's PG*)."""
        env = child_env(
            {
                "PGHOST": LOOPBACK,
                "PGPORT": str(self.port),
                "PGUSER": SUPERUSER,
                "PGPASSWORD": self.password,
                "PGDATABASE": database,
            }
        )
        env["PATH"] = f"{BIN_DIR}:{env.get('PATH', '')}"
        return env


@contextmanager
def private_postgres_server() -> Iterator[PostgresServer]:
    """initdb (superuser ``admin``, SCRAM passwords) and run it until the block ends."""
    home = Path(tempfile.mkdtemp(prefix="pg-private-"))
    user = unprivileged_user(OS_USER)
    if user is not None:  # Postgres refuses root: the folder must be its server user's
        shutil.chown(home, user=user, group=user)
    password = os.urandom(12).hex()
    password_file = home / "password"
    password_file.write_text(password + "\n", encoding="utf-8")
    if user is not None:
        shutil.chown(password_file, user=user, group=user)
    data = home / "data"
    subprocess.run(
        [
            str(BIN_DIR / "initdb"),
            f"--pgdata={data}",
            f"--username={SUPERUSER}",
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        cwd=home,
        user=user,
        group=user,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN_DIR / "postgres"),
            "-D",
            str(data),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"port={port}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=home,
        user=user,
        group=user,
    )
    try:
        _wait_ready(port)
        yield PostgresServer(port=port, password=password)
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown: do not wait for clients
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(home, ignore_errors=True)


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [str(BIN_DIR / "pg_isready"), "--quiet", f"--host={LOOPBACK}", f"--port={port}"],
            check=False,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the private PostgreSQL on port {port} did not start")

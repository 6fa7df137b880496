"""A Milvus Lite server process for a test session or a benchmark: the wheel's ``milvus`` binary
on a free loopback port, its data in a temporary folder (never the local stack's)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slidestream_devstack.milvus import DB_FILE_NAME, milvus_answers, milvus_server_spec
from slidestream_devstack.process import child_env

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def milvus_server(folder: Path) -> Iterator[str]:
    """Start a server keeping its data in ``folder``; yields its URI; stops it on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    spec = milvus_server_spec(folder / DB_FILE_NAME, port, folder)
    uri = f"http://127.0.0.1:{port}"
    with (folder / "milvus.log").open("ab") as log:
        process = subprocess.Popen(
            spec.argv, cwd=spec.cwd, env=child_env(spec.env), stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not milvus_answers(uri):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Milvus Lite did not start; see {folder / 'milvus.log'}")
            time.sleep(0.2)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

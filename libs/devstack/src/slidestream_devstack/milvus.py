"""Milvus Lite's server: the C++ Milvus engine that the ``milvus-lite`` wheel ships, run as a TCP
server (``milvus <db file> <host:port> <log level>``) so that services reach it by ``MILVUS_URI``
exactly as they would reach a Milvus cluster's proxy."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar, Final

from slidestream_devstack.errors import StackError
from slidestream_devstack.part import LaunchSpec, Part, StackContext
from slidestream_devstack.ports import LOOPBACK, MILVUS_PORT

MILVUS_URI: Final = f"http://{LOOPBACK}:{MILVUS_PORT}"
DB_FILE_NAME: Final = "milvus.db"
LOG_LEVEL: Final = "ERROR"


def milvus_lite_lib_dir() -> Path:
    """The wheel's ``lib`` folder: the ``milvus`` binary and the shared libraries it loads."""
    # Located, not imported: the package's __init__ starts nothing we use and warns on import.
    spec = importlib.util.find_spec("milvus_lite")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the milvus-lite wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def milvus_server_spec(db_file: Path, port: int, cwd: Path) -> LaunchSpec:
    """How to start a Milvus Lite server on ``127.0.0.1:port`` keeping its data in ``db_file``."""
    lib = milvus_lite_lib_dir()
    return LaunchSpec(
        argv=[str(lib / "milvus"), str(db_file), f"{LOOPBACK}:{port}", LOG_LEVEL],
        cwd=cwd,
        # The binary loads the wheel's own libraries (libknowhere, OpenBLAS ...).
        env={"LD_LIBRARY_PATH": str(lib)},
    )


def milvus_answers(uri: str, timeout_s: float = 2.0) -> bool:
    """A real client call (list the collections): the server accepts gRPC and serves requests."""
    from pymilvus import MilvusClient, MilvusException

    try:
        client = MilvusClient(uri=uri, timeout=timeout_s)
    except (MilvusException, OSError):
        return False
    try:
        client.list_collections(timeout=timeout_s)
    except (MilvusException, OSError):
        return False
    finally:
        client.close()
    return True


class MilvusPart(Part):
    name: ClassVar[str] = "milvus"
    ports: ClassVar[tuple[int, ...]] = (MILVUS_PORT,)

    def _data(self, ctx: StackContext) -> Path:
        return ctx.paths.data / "milvus"

    def unavailable_reason(self, ctx: StackContext) -> str | None:
        if not (milvus_lite_lib_dir() / "milvus").exists():
            return "the milvus-lite wheel has no server binary for this platform"
        return None

    def prepare(self, ctx: StackContext) -> None:
        self._data(ctx).mkdir(parents=True, exist_ok=True)

    def launch_spec(self, ctx: StackContext) -> LaunchSpec:
        return milvus_server_spec(self._data(ctx) / DB_FILE_NAME, MILVUS_PORT, self._data(ctx))

    def is_ready(self, ctx: StackContext) -> bool:
        return milvus_answers(MILVUS_URI)

    def endpoint(self, ctx: StackContext) -> str:
        return MILVUS_URI

    def env(self, ctx: StackContext) -> dict[str, str]:
        return {"MILVUS_URI": MILVUS_URI}

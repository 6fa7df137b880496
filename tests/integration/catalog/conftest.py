"""Fixtures of the catalog tests: the catalog as a real process on each engine (SQLite, and a
private database on the stack's PostgreSQL), and tenant tokens from the upload service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.catalog import (
    STACK_ENV_FILE,
    CatalogProcess,
    create_tenant,
    private_postgres_database,
)
from tests.support.milvus import milvus_server


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, stack_env: dict[str, str]) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    if "POSTGRES_URL" not in stack_env:
        pytest.fail("the local stack has no PostgreSQL; `make setup` installs it")
    with private_postgres_database(stack_env["POSTGRES_URL"]) as url:
        yield url


@pytest.fixture
async def catalog(
    stack_env: dict[str, str], database_url: str | None, tmp_path: Path
) -> AsyncIterator[CatalogProcess]:
    # A Milvus server per catalog process: a server that earlier, stopped catalogs were connected
    # to refused a reindex's new connection once in a full run (pymilvus: "Fail connecting").
    with milvus_server(tmp_path / "milvus") as milvus_uri:
        process = CatalogProcess(stack_env, tmp_path, database_url, milvus_uri)
        try:
            await process.start()
            yield process
        finally:
            process.stop()


@pytest.fixture
def tenant_token(stack_env: dict[str, str]) -> tuple[str, str]:
    """A fresh tenant and its token (the upload API at ``UPLOAD_API`` resolves it)."""
    return create_tenant(STACK_ENV_FILE)


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus Lite server process of the catalog tests' own."""
    with milvus_server(tmp_path_factory.mktemp("milvus")) as uri:
        yield uri

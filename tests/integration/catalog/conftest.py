"""The catalog's integration fixtures: a Milvus Lite server process of its own per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.milvus import milvus_server


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with milvus_server(tmp_path_factory.mktemp("milvus")) as uri:
        yield uri

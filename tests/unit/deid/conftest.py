"""Fixtures of the deid unit tests: the service's own tables on SQLite, migrated to head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from slidestream_deid.main import MIGRATIONS_DIR
from slidestream_platform.db import DatabaseSettings, make_engine, upgrade_to_head
from slidestream_samples import make_svs
from tests.support.deid_harness import Harness, deid_harness


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(DatabaseSettings(url=None, data_dir=tmp_path), "deid")
    upgrade_to_head(engine, "deid", MIGRATIONS_DIR)
    yield engine
    engine.dispose()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with deid_harness(tmp_path) as built:
        yield built


@pytest.fixture(scope="module")
def planted_svs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_svs(tmp_path_factory.mktemp("planted")).path

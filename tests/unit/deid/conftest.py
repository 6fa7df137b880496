"""Fixtures of the deid unit tests: the service's own tables on SQLite, migrated to head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from slidestream_deid.main import MIGRATIONS_DIR
from slidestream_platform.db import DatabaseSettings, make_engine, upgrade_to_head


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(DatabaseSettings(url=None, data_dir=tmp_path), "deid")
    upgrade_to_head(engine, "deid", MIGRATIONS_DIR)
    yield engine
    engine.dispose()

"""Fixtures of the upload unit tests: the service's own table on SQLite, migrated to head."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidestream_platform.db import DatabaseSettings, make_engine, upgrade_to_head
from slidestream_upload.adapters.repository import UploadRepository
from slidestream_upload.admin import MIGRATIONS_DIR


@pytest.fixture
def uploads(tmp_path: Path) -> UploadRepository:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'upload.db'}"), "upload")
    upgrade_to_head(engine, "upload", MIGRATIONS_DIR)
    return UploadRepository(engine)

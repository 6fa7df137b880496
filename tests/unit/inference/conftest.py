"""Fixtures of the inference tests: one converted slide with known grey stripes; for the models
API, the bucket in memory, a fake Triton that serves it, the service's migrated SQLite database,
and the use cases over them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.routes import (
    SqlBackfills,
    SqlModelLoads,
    SqlRoutes,
)
from slidestream_inference.models_admin import ModelsAdmin
from tests.support.fakes import MemoryStore, RecordingPublisher
from tests.support.inference import ConvertedSlide, convert_striped
from tests.support.models_api import (
    FakeSlideCatalogue,
    FakeTriton,
    migrated_engine,
)

MODELS_BUCKET = "models"
MAX_UPLOAD_BYTES = 1024 * 1024


@pytest.fixture(scope="session")
def striped(tmp_path_factory: pytest.TempPathFactory) -> ConvertedSlide:
    return convert_striped(tmp_path_factory.mktemp("striped"))


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def bucket(store: MemoryStore) -> ModelBucket:
    return ModelBucket(store, MODELS_BUCKET)


@pytest.fixture
def triton(bucket: ModelBucket) -> FakeTriton:
    return FakeTriton(bucket)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_engine(tmp_path / "data")
    yield engine
    engine.dispose()


@pytest.fixture
def catalogue() -> FakeSlideCatalogue:
    return FakeSlideCatalogue()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def admin(
    bucket: ModelBucket,
    triton: FakeTriton,
    engine: Engine,
    catalogue: FakeSlideCatalogue,
    publisher: RecordingPublisher,
) -> ModelsAdmin:
    return ModelsAdmin(
        bucket=bucket,
        triton=triton,
        routes=SqlRoutes(engine),
        backfills=SqlBackfills(engine),
        loads=SqlModelLoads(engine),
        catalogue=catalogue,
        publisher=publisher,
        gpus=0,
        max_upload_bytes=MAX_UPLOAD_BYTES,
    )

"""Fixtures of the inference tests: one converted slide with known grey stripes; for the models
API, the bucket in memory, a fake Triton that serves it, the service's migrated SQLite database,
and the use cases over them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from slidestream_inference.adapters.model_bucket import ModelBucket
from slidestream_inference.adapters.routes import (
    SqlBackfills,
    SqlModelLoads,
    SqlRoutes,
)
from slidestream_inference.adapters.triton_replicas import FixedTritonReplicas, Replica
from slidestream_inference.models_admin import ModelsAdmin
from tests.support.fakes import MemoryStore, RecordingPublisher
from tests.support.inference import ConvertedSlide, convert_striped
from tests.support.models_api import (
    TRITON_ENDPOINT,
    FakeSlideCatalogue,
    FakeTriton,
    FakeTritonReplicas,
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
        triton=FixedTritonReplicas(Replica(TRITON_ENDPOINT, triton)),
        routes=SqlRoutes(engine),
        backfills=SqlBackfills(engine),
        loads=SqlModelLoads(engine),
        catalogue=catalogue,
        publisher=publisher,
        gpus=0,
        max_upload_bytes=MAX_UPLOAD_BYTES,
    )


REPLICA_COUNT = 3


@pytest.fixture
def replicas(bucket: ModelBucket) -> FakeTritonReplicas:
    """Three Triton replicas (a headless Service's pods), each serving the bucket."""
    return FakeTritonReplicas.over(bucket, REPLICA_COUNT)


@pytest.fixture
def replicated(admin: ModelsAdmin, replicas: FakeTritonReplicas) -> ModelsAdmin:
    """The use cases over three Triton replicas."""
    return replace(admin, triton=replicas)

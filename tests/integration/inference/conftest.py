"""Fixtures of the inference integration tests: the stack's models API with the models token,
its object store, and a janitor that takes away the models and routes a module made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slidestream_client.model_client import ModelsClient
from slidestream_platform.objectstore.minio_store import MinioObjectStore
from tests.support.inference_stack import Janitor, ModelsApi
from tests.support.stack import object_store


@pytest.fixture(scope="session")
def models_api(stack_env: dict[str, str]) -> ModelsApi:
    token_file = stack_env.get("MODELS_TOKEN_FILE")
    if not token_file or "INFERENCE_API" not in stack_env:
        pytest.fail("the local stack runs no inference service (INFERENCE_API missing)")
    token = Path(token_file).read_text(encoding="utf-8").strip()
    return ModelsApi(stack_env["INFERENCE_API"], token, stack_env["MODELS_BUCKET"])


@pytest.fixture(scope="session")
def store(stack_env: dict[str, str]) -> MinioObjectStore:
    return object_store(stack_env)


@pytest.fixture(scope="module")
def janitor(models_api: ModelsApi, store: MinioObjectStore) -> Iterator[Janitor]:
    with ModelsClient(models_api.url, models_api.token) as client:
        janitor = Janitor(client, store, models_api.bucket)
        try:
            yield janitor
        finally:
            janitor.clean()

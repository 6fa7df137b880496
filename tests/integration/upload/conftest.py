"""Fixtures of the upload tests (the deployment itself is in support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.upload import UploadDeployment


@pytest.fixture(scope="module")
def deployment(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UploadDeployment]:
    deployment = UploadDeployment(stack_env=stack_env, workdir=tmp_path_factory.mktemp("upload"))
    deployment.start_service()
    deployment.start_tusd()
    try:
        yield deployment
    finally:
        deployment.stop()

"""Fixtures of the chart tests: the pinned Helm, built from source once."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidestream_devstack.tools import ensure_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_helm()

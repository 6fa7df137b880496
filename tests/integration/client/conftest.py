"""Fixtures of the client tests: the shared stack's upload API and a fresh tenant's token."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SLIDESTREAM = Path(sys.executable).with_name("slidestream")
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def upload_api(stack_env: dict[str, str]) -> str:
    api = stack_env.get("UPLOAD_API")
    if not api:
        pytest.fail("the local stack runs no upload service (UPLOAD_API missing in stack.env)")
    return api


@pytest.fixture(scope="module")
def _module_tenant_token(upload_api: str) -> str:
    name = f"client-{uuid.uuid4().hex[:10]}"
    argv = [str(SLIDESTREAM), "admin", "tenant", "create", name, "--json"]
    completed = subprocess.run(
        argv,
        cwd=REPO_ROOT,  # the admin command reads .local/stack.env from there
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    token = json.loads(completed.stdout.strip().splitlines()[-1])["token"]
    assert isinstance(token, str)
    return token


@pytest.fixture
def client_token(request: pytest.FixtureRequest, upload_api: str) -> str:
    """The shared ``partner_token`` fixture when the suite has one, else a tenant of our own."""
    try:
        token = request.getfixturevalue("partner_token")
    except pytest.FixtureLookupError:
        token = request.getfixturevalue("_module_tenant_token")
    assert isinstance(token, str)
    return token

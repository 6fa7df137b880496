"""Fixtures of the end-to-end tests: a fresh tenant of the running stack, made as an operator
would make one (``slidestream admin tenant create``)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SLIDESTREAM = Path(sys.executable).with_name("slidestream")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def e2e_token(stack_env: dict[str, str]) -> str:
    """A token of a tenant created for this module (the admin command reads .local/stack.env)."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    created = subprocess.run(
        [str(SLIDESTREAM), "admin", "tenant", "create", name, "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr[-2000:]
    token = json.loads(created.stdout.strip().splitlines()[-1])["token"]
    assert isinstance(token, str)
    return token

"""Fixtures every suite may ask for: the real local stack, started once per session (only by the
integration and end-to-end tests, which ask for it).

The stack is left running after the session (a second session adopts it in a second or two);
stop it with ``slidestream stack down``.
"""

from __future__ import annotations

import pytest

from slidestream_devstack import stack


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """Every part of the stack up and ready; the stack.env mapping (endpoints and credentials)."""
    return stack.up()

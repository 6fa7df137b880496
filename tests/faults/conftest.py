"""The fault suite's stack: started once per session on free ports (never the local stack's),
healed after every scenario, stopped at the end. ``make test-faults`` runs the suite and
rewrites ``docs/reliability.md`` from what it measured."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from tests.support.faults.local import LocalStack
from tests.support.faults.report import save_session
from tests.support.faults.stack import FaultStack, results_dir


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--faults-seed",
        type=int,
        default=None,
        help="seed of the fault suite's random choices (a run's report names its seed)",
    )


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[FaultStack]:
    started = time.monotonic()
    stack = FaultStack.start()
    try:
        yield stack
    finally:
        stack.stop()
        save_session(started, sorted(p.stem for p in results_dir().glob("*-*.json")))


@pytest.fixture
def stack(fault_stack: FaultStack) -> Iterator[FaultStack]:
    """The session's stack for one scenario; whatever the scenario broke is undone after it."""
    yield fault_stack
    fault_stack.heal()


@pytest.fixture
def faults_seed(request: pytest.FixtureRequest) -> int:
    """The seed given, or a new one (reported, so that a failing run can be replayed)."""
    given = request.config.getoption("--faults-seed", default=None)
    return int(given) if given is not None else random.SystemRandom().randrange(1_000_000)


@pytest.fixture(scope="session")
def local_stack(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> LocalStack:
    """The local stack with every service, for the security scenarios (p, q, o): adopted when
    it runs (``SLIDESTREAM_HOME`` names another checkout's), started when it does not."""
    return LocalStack.of(stack_env, tmp_path_factory.mktemp("local-stack"))

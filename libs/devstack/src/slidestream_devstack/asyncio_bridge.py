"""Run a coroutine from the synchronous stack API, even when the caller already has a loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from async code (e.g. a pytest-asyncio fixture): a nested asyncio.run is not allowed,
    # so the coroutine gets a loop of its own on a helper thread.
    outcome: dict[str, T] = {}
    failure: list[BaseException] = []

    def runner() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=runner, name="devstack-async", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome["value"]

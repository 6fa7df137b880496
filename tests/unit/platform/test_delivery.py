from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from slidestream_platform.delivery import RetryPolicy, disposition
from slidestream_platform.errors import (
    AccessError,
    ObjectNotFoundError,
    PoisonError,
    RetryableError,
)


class _Model(BaseModel):
    x: int


def _validation_error() -> ValidationError:
    try:
        _Model.model_validate({"x": "nope"})
    except ValidationError as error:
        return error
    raise AssertionError("expected a validation error")


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(max_attempts=6, backoff_initial_s=0.5, backoff_max_s=3.0)
    assert [policy.backoff_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("error", "dead_letter_now", "reason"),
    [
        (PoisonError("corrupt tile"), True, "poison"),
        (ObjectNotFoundError("gone"), True, "object-not-found"),
        (AccessError("403"), True, "access-denied"),
        (_validation_error(), True, "invalid-event"),
        (json.JSONDecodeError("bad", "{", 0), True, "invalid-event"),
        (RetryableError("503"), False, "transient"),
        (ConnectionError("reset"), False, "unhandled-error"),
        (RuntimeError("bug"), False, "unhandled-error"),
    ],
)
def test_disposition(error: Exception, dead_letter_now: bool, reason: str) -> None:
    verdict = disposition(error)
    assert verdict.dead_letter_now is dead_letter_now
    assert verdict.reason == reason


def test_errors_can_carry_a_specific_reason() -> None:
    assert PoisonError("x", reason="phi-residual").reason == "phi-residual"
    assert PoisonError("x").reason == "poison"

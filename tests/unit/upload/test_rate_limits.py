"""The partner API's token buckets, on a fake clock (no test sleeps)."""

from __future__ import annotations

import pytest

from slidestream_upload.domain.rate_limits import Rate, TokenBuckets, retry_after_s
from tests.support.fakes import FakeClock


def test_a_burst_passes_then_the_next_request_is_told_when_to_come_back() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Rate(per_s=2.0, burst=3), clock=clock)

    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)

    clock.advance(0.5)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)


def test_a_refused_request_takes_nothing() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Rate(per_s=1.0, burst=1), clock=clock)
    buckets.take("a")

    for _ in range(5):
        assert buckets.take("a") == pytest.approx(1.0)
    clock.advance(1.0)
    assert buckets.take("a") == 0.0


def test_buckets_refill_at_the_rate_up_to_the_burst_and_keys_are_independent() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Rate(per_s=10.0, burst=2), clock=clock)
    buckets.take("a")
    buckets.take("a")

    assert buckets.take("b") == 0.0
    clock.advance(60.0)  # a minute idle refills to the burst, not to 600
    assert [buckets.take("a") > 0 for _ in range(3)] == [False, False, True]


def test_the_least_recently_used_bucket_is_forgotten_beyond_the_key_limit() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Rate(per_s=1.0, burst=1), clock=clock, max_keys=2)
    buckets.take("a")
    buckets.take("b")
    assert buckets.take("a") > 0  # "a" is now the most recently used

    buckets.take("c")  # forgets "b"

    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0


@pytest.mark.parametrize(("wait_s", "header"), [(0.01, 1), (0.5, 1), (1.0, 1), (1.2, 2)])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(
    wait_s: float, header: int
) -> None:
    assert retry_after_s(wait_s) == header


@pytest.mark.parametrize(("per_s", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_rate_must_let_something_through(per_s: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate(per_s=per_s, burst=burst)

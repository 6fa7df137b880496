"""Token buckets for the partner API: each key (a token's hash, a client address) holds up to
``burst`` requests and regains ``per_s`` of them every second; a request that finds its bucket
empty is told how long until the next one is there (HTTP 429 with ``Retry-After``).

The buckets live in the process: with several replicas behind a load balancer, each keeps its
own, so a client may reach up to ``replicas`` times the configured rate. That is the accepted
trade-off for a limit whose job is to stop a runaway script or a token-guessing loop, not to
meter exactly; a shared store (Redis) would cost a network round trip per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_MAX_KEYS = 100_000
"""Buckets kept per limiter; beyond it the least recently used is forgotten (it has most
likely refilled anyway), which bounds memory when requests come from very many addresses."""


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    """Requests regained per second (the sustained rate)."""
    burst: int
    """Requests a full bucket allows back to back."""

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_s > 0 and burst >= 1")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


class TokenBuckets:
    """One bucket per key, at one rate; safe to share between threads."""

    def __init__(
        self,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: ``0.0`` when it had one, otherwise the
        seconds until it will (nothing is taken then, so waiting that long is enough)."""
        with self._lock:
            now_s = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = _Bucket(tokens=float(self._rate.burst), updated_s=now_s)
                self._buckets[key] = bucket
                if len(self._buckets) > self._max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                elapsed_s = max(0.0, now_s - bucket.updated_s)
                bucket.tokens = min(
                    float(self._rate.burst), bucket.tokens + elapsed_s * self._rate.per_s
                )
                bucket.updated_s = now_s
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate.per_s


def retry_after_s(wait_s: float) -> int:
    """``Retry-After`` is whole seconds (RFC 9110 §10.2.3): round up, and never 0 (a client
    told 0 would come straight back to an empty bucket)."""
    return max(1, math.ceil(wait_s))


@dataclass(frozen=True, slots=True)
class PartnerRateLimits:
    """The partner API's two limits: every request spends from its client address's bucket
    (before the token is even looked up, so guessing tokens is throttled too) and, once the
    token is known, from that token's bucket."""

    per_token: TokenBuckets
    per_address: TokenBuckets

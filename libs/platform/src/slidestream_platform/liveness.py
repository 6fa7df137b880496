"""Is the service's consumer still polling Kafka? What ``GET /healthz`` answers.

A consumer polls whenever it is not handling a message: FastStream's loop waits in
``getone``/``getmany`` between messages, so an idle service is alive. While a handler runs, the
consumer does not poll, and once it has not polled for ``max.poll.interval.ms`` Kafka evicts
the member and hands its partitions to another; a handler that never returns (a deadlock, a hung
read without a timeout) leaves a process that serves HTTP, owns no work and does nothing. That
is what liveness reports, so that Kubernetes restarts the pod.

* :class:`ConsumerWatch` notes when each message's handling began (the delivery middleware
  wraps every message in :meth:`ConsumerWatch.handling`) and answers which handlings have gone
  without a poll for longer than ``stall_after_s`` (``KAFKA_MAX_POLL_INTERVAL_S`` plus
  ``KAFKA_LIVENESS_MARGIN_S``: the member is gone by then);
* a long handler that keeps its group membership
  (:func:`slidestream_platform.membership.keep_group_membership`) polls while it works and says
  so with :func:`note_poll`; the handling's clock restarts at each poll, so hours of conversion
  stay alive while a stuck poller does not.

The handling in progress is found through a context variable: the membership poller is a task
started inside the handler, and tasks inherit the context of the code that starts them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic``; a fake one in tests)."""

DEFAULT_STALL_AFTER_S = 360.0
"""Kafka's default ``max.poll.interval.ms`` (300 s) plus the default margin (60 s)."""


@dataclass(slots=True, eq=False)
class _Handling:
    """One message being handled, and the last sign that its consumer polled."""

    topic: str
    last_poll_s: float


_CURRENT: ContextVar[tuple[_Handling, Clock] | None] = ContextVar(
    "slidestream_current_handling", default=None
)


def note_poll() -> None:
    """The consumer of the message handled in this context just polled (membership poller)."""
    current = _CURRENT.get()
    if current is not None:
        handling, clock = current
        handling.last_poll_s = clock()


@dataclass(slots=True)
class ConsumerWatch:
    """The messages in flight in this process and how long each has gone without a poll."""

    stall_after_s: float = DEFAULT_STALL_AFTER_S
    clock: Clock = time.monotonic
    _in_flight: list[_Handling] = field(default_factory=list)

    @contextmanager
    def handling(self, topic: str) -> Iterator[None]:
        """Around one message's handling: its consumer polled last when it fetched it."""
        entry = _Handling(topic=topic, last_poll_s=self.clock())
        self._in_flight.append(entry)
        token = _CURRENT.set((entry, self.clock))
        try:
            yield
        finally:
            _CURRENT.reset(token)
            self._in_flight.remove(entry)

    def stalled(self) -> dict[str, float]:
        """Topic → seconds without a poll, for each handling past ``stall_after_s``."""
        now = self.clock()
        return {
            entry.topic: round(now - entry.last_poll_s, 3)
            for entry in self._in_flight
            if now - entry.last_poll_s > self.stall_after_s
        }

"""ConsumerWatch: which handlings went without a poll for too long, by a fake clock."""

from __future__ import annotations

import asyncio

from slidestream_platform.liveness import ConsumerWatch, note_poll


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


async def test_a_poll_from_a_task_started_inside_the_handling_restarts_its_clock() -> None:
    clock = FakeClock()
    watch = ConsumerWatch(stall_after_s=10.0, clock=clock)
    with watch.handling("slides.qc.v1"), watch.handling("slides.uploaded.v1"):
        clock.now_s = 11.0
        assert watch.stalled() == {"slides.qc.v1": 11.0, "slides.uploaded.v1": 11.0}

    with watch.handling("slides.qc.v1"):
        clock.now_s = 30.0
        poller = asyncio.create_task(_poll())  # as keep_group_membership's poller
        await poller
        clock.now_s = 35.0
        assert watch.stalled() == {}
        clock.now_s = 41.0
        assert watch.stalled() == {"slides.qc.v1": 11.0}
    assert watch.stalled() == {}


async def _poll() -> None:
    note_poll()


def test_a_poll_outside_any_handling_changes_nothing() -> None:
    clock = FakeClock()
    watch = ConsumerWatch(stall_after_s=10.0, clock=clock)
    note_poll()
    clock.now_s = 1e6
    assert watch.stalled() == {}

"""The scheduled poller backs off exponentially after failures, up to 60 s, and recovers on success."""
from __future__ import annotations

import time
from datetime import UTC, datetime

from common.feeds.follow.client import FeedError
from common.feeds.follow.poller import Poller


class FakeFollower:
    def __init__(self):
        self.calls = 0
        self.failing = True
        self.last_poll = None

    def poll(self, wait=None):
        assert wait == 0  # a scheduled poll never waits for a pass already running
        self.calls += 1
        if self.failing:
            raise FeedError("connection refused")
        self.last_poll = datetime.now(UTC)
        return 0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_failures_double_the_wait_from_one_second_up_to_sixty_and_a_success_resets_it():
    follower, clock = FakeFollower(), Clock()
    poller = Poller(follower, interval=5, clock=clock)
    waits = []
    for _ in range(8):
        poller.tick()
        waits.append(poller.next_allowed - clock.now)
        poller.tick()  # still backing off: no poll
        clock.now = poller.next_allowed
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert follower.calls == 8
    follower.failing = False
    poller.tick()
    assert poller.failures_in_a_row == 0 and poller.next_allowed == 0
    poller.tick()
    assert follower.calls == 10


def test_a_successful_manual_poll_ends_the_back_off_early():
    follower, clock = FakeFollower(), Clock()
    poller = Poller(follower, interval=5, clock=clock)
    poller.tick()
    assert follower.calls == 1
    follower.failing = False
    follower.poll(wait=0)  # POST /poll succeeded meanwhile
    poller.tick()
    assert follower.calls == 3 and poller.failures_in_a_row == 0


def test_the_scheduler_polls_at_the_interval_and_stops_cleanly():
    follower = FakeFollower()
    follower.failing = False
    poller = Poller(follower, interval=0.05)
    poller.start()
    try:
        deadline = time.monotonic() + 5
        while follower.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        poller.stop()
    assert follower.calls >= 3
    calls = follower.calls
    time.sleep(0.2)
    assert follower.calls == calls


def test_an_interval_of_zero_schedules_nothing():
    follower = FakeFollower()
    poller = Poller(follower, interval=0)
    poller.start()
    time.sleep(0.1)
    poller.stop()
    assert follower.calls == 0

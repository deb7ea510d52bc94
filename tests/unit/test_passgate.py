"""One pass at a time per follower; callers wait a bounded time, and only a bounded number of them."""
from __future__ import annotations

import threading
import time

import pytest

from common.feeds.follow.passgate import PassGate
from tests.support import wait_until


def test_callers_beyond_the_waiting_limit_are_told_at_once_that_a_pass_is_running():
    gate = PassGate(max_waiters=1)
    assert gate.enter(wait=None)  # the running pass
    waiter = threading.Thread(target=lambda: gate.enter(wait=5))
    waiter.start()
    while gate._waiters == 0:  # the first caller is waiting now
        time.sleep(0.01)
    started = time.monotonic()
    assert gate.enter(wait=5) is False  # the limit is reached: no second waiting thread
    assert time.monotonic() - started < 1
    gate.leave()
    waiter.join(5)
    assert not waiter.is_alive()


def test_a_caller_within_the_limit_waits_for_the_running_pass_and_then_enters():
    gate = PassGate(max_waiters=2)
    assert gate.enter(wait=None)
    threading.Timer(0.2, gate.leave).start()
    assert gate.enter(wait=5) is True


def end_the_pass_once_a_caller_waits(gate: PassGate, handled: int, cut: bool) -> threading.Thread:
    def end():
        wait_until(lambda: gate._waiters, message="a caller to wait for the pass")
        gate.ended(handled, None, cut=cut)
        gate.leave()

    thread = threading.Thread(target=end)
    thread.start()
    return thread


def test_a_caller_that_waited_for_a_pass_that_read_the_feed_takes_its_outcome():
    gate = PassGate()
    assert gate.enter(wait=None)
    ending = end_the_pass_once_a_caller_waits(gate, handled=3, cut=False)
    assert gate.run(5, lambda: pytest.fail("a second pass"), "running") == 3
    ending.join(5)


def test_a_caller_that_waited_for_a_pass_whose_long_poll_was_cut_runs_a_pass_of_its_own():
    gate = PassGate()
    assert gate.enter(wait=None)  # a pass holding a long poll
    ending = end_the_pass_once_a_caller_waits(gate, handled=0, cut=True)  # it read nothing
    assert gate.run(5, lambda: 7, "running") == 7
    ending.join(5)

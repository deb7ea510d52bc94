"""One pass at a time per follower; callers wait a bounded time, and only a bounded number of them."""
from __future__ import annotations

import threading
import time

from common.feeds.follow.passgate import PassGate


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

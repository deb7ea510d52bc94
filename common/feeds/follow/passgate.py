"""One pass of a feed at a time in a process, and a bounded wait for callers that find one running."""
from __future__ import annotations

import threading
from collections.abc import Callable

from common.feeds.follow.errors import PassRunning

MAX_WAITERS = 32  # calls waiting with a time limit; more are told at once that a pass is running (threads bounded)


class PassGate:
    """A lock around a follower's passes that also remembers how the last pass ended.

    A caller with a time limit (an HTTP request) waits at most that long, and only while fewer than MAX_WAITERS
    wait already: callers never pile up threads. Having waited for a pass, it takes that pass's outcome, unless that
    pass's long poll was cut (`ended(cut=True)`): it did not read the feed, so the caller runs a pass of its own."""

    def __init__(self, max_waiters: int = MAX_WAITERS):
        self._lock = threading.Lock()
        self._waiters = 0
        self._waiters_lock = threading.Lock()
        self.max_waiters = max_waiters
        self.passes = 0  # passes ended in this process
        self.outcome: tuple[int, Exception | None] = (0, None)  # the last one's (handled, exception)
        self.cut = False  # whether the last one's long poll was cut short (its 304 says nothing of the feed)

    def enter(self, wait: float | None) -> bool:
        """Take the gate: None waits as long as it takes, 0 not at all; False when not taken."""
        if self._lock.acquire(blocking=False):
            return True
        if wait is None:
            return self._lock.acquire()
        if wait <= 0:
            return False
        with self._waiters_lock:
            if self._waiters >= self.max_waiters:
                return False
            self._waiters += 1
        try:
            return self._lock.acquire(timeout=wait)
        finally:
            with self._waiters_lock:
                self._waiters -= 1

    def leave(self) -> None:
        self._lock.release()

    def run(self, wait: float | None, run_pass: Callable[[], int], running: str) -> int:
        """`run_pass()` inside the gate; having waited (`wait` not None) for a pass that read the feed, that pass's
        outcome instead.

        PassRunning(`running`) when the gate is not taken within `wait` seconds (see enter)."""
        passes = self.passes
        if not self.enter(wait):
            raise PassRunning(running)
        try:
            if self.passes != passes and wait is not None and not self.cut:  # the pass it waited for read the feed
                handled, error = self.outcome
                if error is not None:
                    raise error
                return handled
            return run_pass()
        finally:
            self.leave()

    def ended(self, handled: int, error: Exception | None, cut: bool = False) -> None:
        """Record how the pass ended (called inside the gate); `cut`: its long poll was cut, the feed not read."""
        self.passes += 1
        self.outcome = (handled, error)
        self.cut = cut

"""The newest (position, created) of a notification log as this process knows it: `AppendSignal` wakes whoever
waits for it to move (held long polls) and tells whoever subscribed (the process's FeedHead) that it may have.

The head is read from the database only while a long poll is held: with nobody waiting, the listener tells the
subscribers and reads nothing (`moved_unread`), so a process that once held a long poll does not pay a head read
per append ever after (notify.py). A waiter therefore re-checks the head after it registers
(`wait(recheck=…)`): an append heard while nobody waited is not in the signal's head.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.feeds.publish.head import Head

log = logging.getLogger(__name__)


class AppendSignal:
    """The newest head of one notification log in this process; waiters and subscribers hear when it moves."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._head: Head | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._waiting = 0
        self._first_waiter: Callable[[], None] | None = None
        self.closed = False

    @property
    def head(self) -> Head | None:
        return self._head

    @property
    def waiting(self) -> int:
        """How many requests wait for the head to move."""
        return self._waiting

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (in the listener's thread; keep it short) whenever the head may have moved."""
        self._callbacks.append(callback)

    def on_first_waiter(self, callback: Callable[[], None]) -> None:
        """Call `callback()` when a request starts waiting while none did (the listener resumes watching)."""
        self._first_waiter = callback

    def notify(self, head: Head | None) -> None:
        """Record `head` as read from the database; waiters wake and subscribers are called when it changed."""
        if head is None:
            return
        with self._cond:
            if head == self._head:
                return
            self._head = head
            self._cond.notify_all()
        self._tell_subscribers()

    def moved_unread(self) -> bool:
        """The head may have moved: with nobody waiting, tell the subscribers and return True (no read needed);
        else False, and the caller reads the head and calls notify()."""
        with self._cond:
            if self._waiting:
                return False
            # Told under the lock: a request that starts waiting after this re-checks a head already marked stale.
            self._tell_subscribers()
            return True

    def wait(self, beyond: int, timeout: float, recheck: Callable[[], Head | None] | None = None) -> Head | None:
        """Block until the head's position passes `beyond` (return it), or `timeout` s pass / close() (None).

        `recheck` reads the head as of now (FeedHead.get): called once the request counts as waiting, it finds an
        append heard before then, which moved_unread() did not read."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            first = self._waiting == 1
        try:
            if first and self._first_waiter is not None:
                self._first_waiter()
            fresh = recheck() if recheck is not None else None
            if fresh is not None and fresh[0] > beyond and not self.closed:
                return fresh
            with self._cond:
                while not self.closed:
                    if self._head is not None and self._head[0] > beyond:
                        return self._head
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)
            return None
        finally:
            with self._cond:
                self._waiting -= 1

    def close(self) -> None:
        """Release every waiter now and from now on (the process is stopping)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _tell_subscribers(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # a subscriber's bug must not stop the listener
                log.exception("append subscriber %r failed", callback)

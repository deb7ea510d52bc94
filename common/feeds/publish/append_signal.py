"""The newest (position, created) of a notification log as this process knows it: `AppendSignal` wakes whoever
waits for it to move (held long polls) and calls whoever subscribed (the process's FeedHead)."""
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
        self._callbacks: list[Callable[[Head], None]] = []
        self.closed = False

    @property
    def head(self) -> Head | None:
        return self._head

    def subscribe(self, callback: Callable[[Head], None]) -> None:
        """Call `callback(head)` (in the listener's thread; keep it short) whenever the head changes."""
        self._callbacks.append(callback)

    def notify(self, head: Head | None) -> None:
        """Record `head` as read from the database; waiters wake and subscribers are called when it changed."""
        if head is None:
            return
        with self._cond:
            if head == self._head:
                return
            self._head = head
            self._cond.notify_all()
        for callback in self._callbacks:
            try:
                callback(head)
            except Exception:  # a subscriber's bug must not stop the listener
                log.exception("append subscriber %r failed", callback)

    def wait(self, beyond: int, timeout: float) -> Head | None:
        """Block until the head's position passes `beyond` (return it), or `timeout` s pass / close() (None)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.closed:
                if self._head is not None and self._head[0] > beyond:
                    return self._head
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        return None

    def close(self) -> None:
        """Release every waiter now and from now on (the process is stopping)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


"""The feed's head — newest position and time — kept in memory, so a 304 costs no database work.

A process reads the head from the database only when it may have moved, as told by a watch. The watch comes from
the process's one AppendListener (notify.py), the same that wakes held long polls, so each process has one way of
hearing of appends, and on PostgreSQL one LISTEN connection:
- PostgreSQL: every append sends NOTIFY in its transaction (delivered at commit); the listener hears it and tells its
  subscribers, this head among them (`changed()`). While the listener is not listening
  (starting, or its connection lost), the watch says "moved" and the head is read on every request.
- SQLite (a file): `PRAGMA data_version` on the listener's own connection changes whenever another connection, in
  this process or another, commits to the file. The watch asks it on every request (a few microseconds, no table
  read), so a commit that finished before the request began is always seen.
- An in-memory SQLite database (each connection sees a database of its own), or another database: the head is
  read on every request.
An append through `FeedPublisher.append` calls `changed()` at commit, so a process sees its own appends at once;
another process's once the listener has heard of them (PostgreSQL: the notification's delivery and one head
read). Whatever the watch says, the head is read again after `max_age` seconds: the safety net should a signal
go missing. `changed()` is the hook for anything else that learns of an append.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

Head = tuple[int, datetime]  # (position, created) of the newest notification

MAX_AGE = 1.0  # seconds a head is trusted without a sign of change


class Watch(Protocol):
    def moved(self) -> bool:
        """Whether the log may have grown since the last call (True when it cannot tell)."""
        ...

    def close(self) -> None:
        ...


class FeedHead:
    """The newest (position, created) of one notification log, re-read only when a watch says it may have moved."""

    def __init__(self, read: Callable[[], Head | None], watch: Callable[[FeedHead], Watch] | None = None,
                 max_age: float = MAX_AGE):
        self._read = read
        self._make_watch = watch
        self.max_age = max_age
        self._lock = threading.Lock()
        self._generation = 0  # bumped on every sign of change
        self._cached: tuple[int, float, Head | None] | None = None  # (generation, monotonic time read, head)
        self._watch: Watch | None = None
        self._watch_pid = 0  # a watch (its connection, its thread) belongs to the process that made it

    def get(self) -> Head | None:
        """The head as of no earlier than this call (up to the listener's delivery delay on PostgreSQL)."""
        with self._lock:
            # Asked under the lock: a thread that sees no change must not use a head another thread has just
            # been told is stale.
            if self._current_watch().moved():
                self._generation += 1
            generation, cached = self._generation, self._cached
            if cached and cached[0] == generation and time.monotonic() - cached[1] < self.max_age:
                return cached[2]
        started = time.monotonic()
        head = self._read()
        with self._lock:
            if self._generation == generation:  # no change was signalled while reading
                self._cached = (generation, started, head)
        return head

    def changed(self) -> None:
        """The log may have grown: the next get() reads the head again."""
        with self._lock:
            self._generation += 1

    def close(self) -> None:
        """Let go of the watch (what it holds belongs to its listener, which its owner stops)."""
        with self._lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None

    def _current_watch(self) -> Watch:
        if self._watch is None or self._watch_pid != os.getpid():  # first use, or a forked worker
            self._watch = self._make_watch(self) if self._make_watch else ReadEveryTime()
            self._watch_pid = os.getpid()
        return self._watch


class ReadEveryTime:
    """No way to tell: the head is read on every request."""

    def moved(self) -> bool:
        return True

    def close(self) -> None:
        pass

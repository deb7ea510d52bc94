"""The time a publisher stamps entries and dates pages with: the wall clock, never read backwards in a process."""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class SteadyClock:
    """A clock that never reads earlier than a time it has read or been shown: a step back stands still until the
    clock it reads catches up."""

    def __init__(self, read: Callable[[], datetime] = utcnow) -> None:
        self.read = read
        self._latest: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The later of the clock and the latest time read or shown before."""
        return self.saw(self.read())

    def saw(self, moment: datetime) -> datetime:
        """Count `moment` (e.g. a stamp just written) as read; return the latest time known."""
        with self._lock:
            if self._latest is None or moment > self._latest:
                self._latest = moment
            return self._latest


# Every log on the system clock shares this one, so a time one of them gave out (a page's Last-Modified) is a
# floor for the stamps of every other (a service appends through its own log beside its publisher's).
_process_clock = SteadyClock()


def process_clock() -> SteadyClock:
    """The process's steady system clock."""
    return _process_clock

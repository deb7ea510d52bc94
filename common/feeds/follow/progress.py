"""What a follower knows about its progress: the feed's head as last seen, its lag behind it, what each pass did.

Plain data and callbacks, no metrics library: the host (common/service/metrics.py) turns them into whatever it
exports. The head is the newest entry of the newest page the follower has read (the current page, at the end of
a pass); the lag is measured against it, so a follower that has not read the feed since it started knows none.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.feeds.follow.client import FeedEntry, Page
from common.feeds.follow.pagewalk import PassWalker
from common.feeds.follow.tracking import Tracked

log = logging.getLogger(__name__)


def entry_time(entry: FeedEntry) -> datetime | None:
    """The entry's atom:updated as an aware datetime (None when missing or unreadable)."""
    if not entry.updated:
        return None
    try:
        moment = datetime.fromisoformat(entry.updated.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Head:
    """The newest entry of the feed as far as the follower knows: its position and publication time."""

    position: int
    updated: datetime | None


@dataclass(frozen=True)
class Lag:
    """How far a follower is behind the head it last saw: entries, and seconds since the oldest entry it has not
    handled was published (0 when caught up)."""

    head: Head
    entries: int
    seconds: float | None


@dataclass(frozen=True)
class PassReport:
    """What one pass over the feed did, for whoever watches the follower (metrics, logs)."""

    feed_url: str
    seconds: float
    requests: int  # page requests made, a 304 included
    handled: int
    outcome: str  # "not_modified", "read", "stuck" (an entry is being retried), "failed"
    position: int | None  # the durable position after the pass (None if it could not be read)
    error: str | None = None


PassListener = Callable[[PassReport], None]


@dataclass
class PassRun:
    """How far the pass in progress got: what its report and the follower's log records say."""

    feed_url: str
    consumer: str
    started: float = field(default_factory=time.monotonic)
    walk: PassWalker | None = None  # its requests, once it reads the feed
    state: Tracked | None = None  # the tracking record it started from, once read
    outcome: str = "failed"  # until the pass ends otherwise

    def report(self, handled: int, error: str | None) -> PassReport:
        """What the pass did; `error` (the follower's last error) is reported only for a failed pass."""
        return PassReport(self.feed_url, time.monotonic() - self.started, self.walk.requests if self.walk else 0,
                          handled, self.outcome, self.state.position if self.state else None,
                          error if self.outcome == "failed" else None)

    def log_context(self) -> dict[str, Any]:
        """`extra=` for log records: structured logs carry the feed and the position."""
        return {"feed": self.feed_url, "consumer": self.consumer,
                "position": self.state.position if self.state else None}


class Progress:
    """The head a follower has seen and the oldest entry it has seen but not handled; thread-safe (pages are
    also read ahead in a worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.head: Head | None = None
        self._pending: tuple[int, datetime | None] | None = None  # (position, published) of the oldest unhandled
        self.listeners: list[PassListener] = []

    def saw(self, page: Page) -> None:
        """A page was read: the current page names the head exactly, an archive page at least bounds it."""
        with self._lock:
            if page.next is None:  # the current page: its newest entry is the head (0: an empty feed)
                newest = page.entries[-1] if page.entries else None
                self.head = Head(newest.position, entry_time(newest)) if newest else Head(0, None)
            elif page.entries:
                newest = page.entries[-1]
                if self.head is None or newest.position > self.head.position:
                    self.head = Head(newest.position, entry_time(newest))

    def handled_up_to(self, pages: list[Page], position: int) -> None:
        """Entries up to `position` are handled: remember the first one of `pages` beyond it, if any."""
        pending = next((e for page in pages for e in page.entries if e.position > position), None)
        with self._lock:
            self._pending = (pending.position, entry_time(pending)) if pending else None

    def caught_up(self, position: int) -> None:
        """The current page did not change since everything on it was handled (a 304)."""
        with self._lock:
            if self.head is None or self.head.position < position:
                self.head = Head(position, None)
            self._pending = None

    def lag(self, position: int, now: datetime | None = None) -> Lag | None:
        """The lag of a follower at `position`; None before it has read the feed."""
        with self._lock:
            head, pending = self.head, self._pending
        if head is None:
            return None
        entries = max(0, head.position - position)
        if entries == 0:
            return Lag(head, 0, 0.0)
        # The oldest unhandled entry's time when the follower saw it; else the head's, a lower bound.
        since = pending[1] if pending is not None and pending[0] > position else head.updated
        if since is None:
            return Lag(head, entries, None)
        return Lag(head, entries, max(0.0, ((now or datetime.now(UTC)) - since).total_seconds()))

    def report(self, report: PassReport) -> None:
        """Tell every listener what a pass did; a failing listener never breaks the follower."""
        for listener in list(self.listeners):
            try:
                listener(report)
            except Exception:  # observability must not take the follower down
                log.exception("a pass listener of %s failed", report.feed_url)

"""Background reading of a FeedFollower in a served process: a long poll kept open while the feed honours it, else
scheduled polls; both back off exponentially (one shared back-off) after failures."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from common.feeds.follow.errors import PassRunning
from common.feeds.follow.follower import FeedFollower

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
# After n failures in a row the next attempt waits 2ⁿ⁻¹ of these: 1, 2, 4 … s. Services started together (`atomshop
# up`, compose) often poll a feed before it answers; its first order should not wait out two poll intervals.
BACKOFF_BASE_SECONDS = 1.0
RUNNING = -1  # what _attempt returns when another pass (a POST /poll) was running
UNHELD_LIMIT = 2  # long polls in a row answered at once with nothing new before the feed counts as not holding
REPROBE_SECONDS = 60.0  # a feed that did not hold a long poll is asked again this often (it may have been upgraded)


class Poller:
    """Polls every `interval` seconds; after n failures in a row waits 2ⁿ⁻¹ s (1, 2, 4 … at most 60 s) before the
    next, and scheduled polls never come more often than every `interval`.

    With `wait` > 0 a thread also keeps a long poll (`Prefer: wait`) open; while the feed honours it (its answers
    carry Preference-Applied) the scheduled polls stand aside. `interval` 0 starts nothing at all.
    """

    def __init__(self, follower: FeedFollower, interval: float, max_backoff: float = MAX_BACKOFF_SECONDS,
                 clock: Callable[[], float] = time.monotonic, wait: float = 0,
                 reprobe: float = REPROBE_SECONDS) -> None:
        self.follower = follower
        self.interval = interval
        self.wait = wait
        self.reprobe = reprobe
        self.max_backoff = max_backoff
        self.clock = clock
        self.failures_in_a_row = 0
        self.next_allowed = 0.0
        self.failed_at: datetime | None = None
        self.long_polling: bool | None = None  # None: not known yet; False: the feed ignores Prefer: wait
        self._declined_at = 0.0
        self._unheld_in_a_row = 0  # long polls answered at once, without Preference-Applied, with nothing new
        self._polling_plainly_until = 0.0  # the long-poll thread polls without a validator until then
        self._holding = False  # a long poll is in flight: a scheduled poll would only queue behind it
        self._scheduler: BackgroundScheduler | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the scheduler and the long poll (a served process only; POLL_INTERVAL=0 leaves it to POST /poll)."""
        if self.interval <= 0 or self._scheduler is not None:
            return
        self._stopping.clear()
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(self.tick, "interval", seconds=self.interval, max_instances=1, coalesce=True,
                                next_run_time=datetime.now(UTC), id="poll", misfire_grace_time=None)
        self._scheduler.start()
        if self.wait > 0:
            self._thread = threading.Thread(target=self._long_poll, daemon=True,
                                            name=f"long-poll-{getattr(self.follower, 'name', 'feed')}")
            self._thread.start()

    def stop(self) -> None:
        """Stop the follower's pass in progress (between two transactions, its requests in flight, a held long poll
        included), then the scheduler and the long-poll thread."""
        self._stopping.set()
        stop = getattr(self.follower, "stop", None)
        if stop is not None:
            stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._thread is not None:
            self._thread.join(timeout=0.5)
            self._thread = None

    def tick(self) -> None:
        """One scheduled run: poll unless backing off or a long poll is open; never raises."""
        if self._thread is not None and (self.long_polling or self._holding
                                         or self.clock() < self._polling_plainly_until):
            return
        if self.clock() < self.next_allowed and not self._recovered_meanwhile():
            return
        self._attempt(0)

    def _attempt(self, wait: float) -> int | None:
        """One pass (a long poll with `wait`); failures feed the shared back-off; never raises."""
        try:
            handled = self.follower.poll(wait=0, long_poll=wait) if wait else self.follower.poll(wait=0)
        except PassRunning:
            return RUNNING  # a POST /poll is reading the feed right now
        except Exception as exc:  # logged by the follower, shown in /health
            self.failures_in_a_row += 1
            self.failed_at = datetime.now(UTC)
            delay = min(self.max_backoff, BACKOFF_BASE_SECONDS * 2 ** (self.failures_in_a_row - 1))
            asked = getattr(exc, "retry_after", None)  # a 429/503's Retry-After: the feed's word, within ours
            if asked:
                delay = max(delay, min(asked, self.max_backoff))
            self.next_allowed = self.clock() + delay
            log.info("backing off %.1fs after %d failed poll(s)", delay, self.failures_in_a_row)
            return None
        self.failures_in_a_row = 0
        self.next_allowed = 0.0
        return handled

    def _long_poll(self) -> None:
        while not self._stopping.is_set():
            pause = self.long_poll_step()
            if pause > 0:
                self._stopping.wait(pause)

    def long_poll_step(self) -> float:
        """One turn of the long-poll thread: a long poll unless backing off or the feed declined; the pause after."""
        backing_off = self.next_allowed - self.clock()
        if backing_off > 0 and not self._recovered_meanwhile():
            return min(backing_off, 1.0)
        declined_for = self.clock() - self._declined_at
        if self.long_polling is False and declined_for < self.reprobe:
            return min(self.reprobe - declined_for, 1.0)
        self._holding = True
        asked = getattr(self.follower.client, "long_polls", 0)
        try:
            handled = self._attempt(self.wait)
            sent = getattr(self.follower.client, "long_polls", 0) != asked
            applied = getattr(self.follower.client, "wait_applied", None)
        finally:
            self._holding = False
        if handled is None:
            self.long_polling = None  # the scheduled polls resume alongside, under the same back-off
            return 0.0
        if handled == RUNNING:
            return 0.1  # let the POST /poll finish
        if sent and applied is None and not handled:
            # Answered at once, not held, and nothing new: twice in a row, and the feed is not holding anything
            # (a tag that changes on every answer, say). Asking again at once would be a flood.
            self._unheld_in_a_row += 1
            applied = False if self._unheld_in_a_row >= UNHELD_LIMIT else None
        else:
            self._unheld_in_a_row = 0
        if applied is False:
            self._unheld_in_a_row = 0
            if self.long_polling is not False:
                log.info("%s does not hold long polls: scheduled polls every %ss", self._feed(), self.interval)
            self._declined_at = self.clock()
        if applied is not None:
            self.long_polling = applied
        elif not handled and not self._has_validator():
            # Nothing to wait on (the position is not on the current page, an entry is being retried, the feed
            # sends no ETag): this thread polls plainly every `interval`, so the schedule stands aside meanwhile.
            self._polling_plainly_until = self.clock() + self.interval * 1.5
            return self.interval
        return 0.0

    def _has_validator(self) -> bool:
        """Whether the next pass can long poll: the follower holds the current page's ETag."""
        try:
            return bool(self.follower.load().etag)
        except Exception:  # the database is away: the next attempt reports it
            return False

    def _feed(self) -> str:
        return getattr(self.follower, "feed_url", "the feed")

    def _recovered_meanwhile(self) -> bool:
        # A POST /poll that succeeded during the back-off shows the feed is back: resume the schedule.
        last = self.follower.last_poll
        return bool(last and self.failed_at and last > self.failed_at)

    def status(self) -> dict[str, Any]:
        return {"interval": self.interval, "running": self._scheduler is not None, "long_poll_wait": self.wait,
                "long_polling": self.long_polling,
                "failures_in_a_row": self.failures_in_a_row,
                "backing_off_for": round(max(0.0, self.next_allowed - self.clock()), 1)}


"""Scheduled polling of a FeedFollower in a served process, backing off exponentially after failures."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from common.feeds.follow.errors import PassRunning

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


class Poller:
    """Polls every `interval` seconds; after n failures in a row waits interval·2ⁿ (at most 60 s) before the next."""

    def __init__(self, follower, interval: float, max_backoff: float = MAX_BACKOFF_SECONDS, clock=time.monotonic):
        self.follower = follower
        self.interval = interval
        self.max_backoff = max_backoff
        self.clock = clock
        self.failures_in_a_row = 0
        self.next_allowed = 0.0
        self.failed_at: datetime | None = None
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        """Start the scheduler (a served process only; POLL_INTERVAL=0 leaves polling to POST /poll)."""
        if self.interval <= 0 or self._scheduler is not None:
            return
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(self.tick, "interval", seconds=self.interval, max_instances=1, coalesce=True,
                                next_run_time=datetime.now(timezone.utc), id="poll", misfire_grace_time=None)
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the follower's pass in progress (between two transactions), then the scheduler."""
        stop = getattr(self.follower, "stop", None)
        if stop is not None:
            stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def tick(self) -> None:
        """One scheduled run: poll unless backing off; never raises (the scheduler thread must survive)."""
        if self.clock() < self.next_allowed and not self._recovered_meanwhile():
            return
        try:
            self.follower.poll(wait=0)
        except PassRunning:
            return  # a POST /poll is reading the feed right now
        except Exception:  # logged by the follower, shown in /health
            self.failures_in_a_row += 1
            self.failed_at = datetime.now(timezone.utc)
            delay = min(self.max_backoff, self.interval * 2 ** self.failures_in_a_row)
            self.next_allowed = self.clock() + delay
            log.info("backing off %.1fs after %d failed poll(s)", delay, self.failures_in_a_row)
        else:
            self.failures_in_a_row = 0
            self.next_allowed = 0.0

    def _recovered_meanwhile(self) -> bool:
        # A POST /poll that succeeded during the back-off shows the feed is back: resume the schedule.
        last = self.follower.last_poll
        return bool(last and self.failed_at and last > self.failed_at)

    def status(self) -> dict:
        return {"interval": self.interval, "running": self._scheduler is not None,
                "failures_in_a_row": self.failures_in_a_row,
                "backing_off_for": round(max(0.0, self.next_allowed - self.clock()), 1)}


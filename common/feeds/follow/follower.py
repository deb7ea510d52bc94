"""A domain-agnostic follower of an atomshop Atom feed: durable position, in-order, exactly-once effects.

One pass (poll), under a per-follower lock (passgate.py):
1. Read the tracking record: position p, bookmark (URL of the page holding p), ETag of the current page. A halted
   record stops here (FollowerHalted); a bookmark off the feed's origin (origin.py) is discarded.
2. Fetch the bookmark (a new consumer: the feed URL), with If-None-Match when the ETag is known; 304 → done.
3. Walk `prev-archive` back to the page holding p (start.py; downloading the pages beyond, up to the one whose
   pre-scan says it holds p, while worker processes parse those before: pagewalk.py, parsing.py), pushing the
   pages passed over onto a PageStack (at most `max_back_pages`, kept as compact tuples spooled to disk past
   4 MiB). That page must hold the entry recorded with p (history.py), else the follower halts durably until
   `TrackingStore.reset`; a current page ending before p is first asked of the publisher (a cache's older copy?).
4. Going forward (forward.py): the page in hand, the stack, then `next-archive` to the current page, each page
   fetched at most once (a URL met twice is a link loop: FeedError), the next group of up to GROUP_PAGES read
   ahead in a worker thread and parsed in worker processes (pagewalk.py, parsing.py): at most 2 × GROUP_PAGES
   parsed pages in memory. After `pages_per_pass` pages the pass ends (`caught_up` False) and the next one
   resumes from the bookmark.
5. Per group or page, one transaction holds the handlers' effects (each in a savepoint) and the compare-and-set
   advance of the tracking record; another instance having moved first → roll back, re-read, carry on
   (applier.py). A failing batch handler is retried page by page, then entry by entry, to find the culprit,
   count its attempts and, after `max_attempts`, move it to the dead-letter table.

`stop()` (a stopping process) ends a pass between two transactions, cuts its in-flight requests short and lets
the parsing processes go (once no other follower of the process uses them).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from common.feeds.follow.applier import Applier, BatchHandler, Handler
from common.feeds.follow.client import FeedClient, FeedError, Page
from common.feeds.follow.dead_letters import DeadLetters
from common.feeds.follow.errors import FollowerHalted, Stopped
from common.feeds.follow.forward import GROUP_PAGES, forward
from common.feeds.follow.history import confirm
from common.feeds.follow.origin import Origin
from common.feeds.follow.pagestack import PageStack
from common.feeds.follow.pagewalk import PassWalker
from common.feeds.follow.parsing import PARSE_WORKERS, PageParser
from common.feeds.follow.passgate import PassGate
from common.feeds.follow.progress import Lag, PassRun, Progress
from common.feeds.follow.start import first_page, start_page
from common.feeds.follow.tracking import PollTimes, Tracked, TrackingModels, TrackingStore, utcnow
from common.feeds.uow import UnitOfWork

__all__ = ["BatchHandler", "FeedFollower", "Handler"]

log = logging.getLogger(__name__)

PAGES_PER_PASS = 1000  # going forward; the rest waits for the next pass
MAX_BACK_PAGES = 20_000  # walking back to the position (a first catch-up of 400 000 entries at 20 a page)


class FeedFollower:
    """Follows one feed for one consumer, applying `handler(session, entry)` to each entry exactly once."""

    def __init__(self, feed_url: str, consumer_name: str, db: UnitOfWork, handler: Handler, models: TrackingModels,
                 *, event_types: Iterable[str] | None = None, max_attempts: int = 3, client: FeedClient | None = None,
                 max_back_pages: int = MAX_BACK_PAGES, pages_per_pass: int = PAGES_PER_PASS,
                 batch_handler: BatchHandler | None = None, parse_workers: int = PARSE_WORKERS):
        self.feed_url = feed_url
        self.name = consumer_name
        self.db = db
        self.models = models
        self.origin = Origin(feed_url)
        self.client = client or FeedClient(origin=feed_url)
        if self.client.origin is None:
            self.client.origin = self.origin
        self.max_back_pages = max_back_pages
        self.pages_per_pass = pages_per_pass
        self.gate = PassGate()  # one pass at a time in this process
        self._stopping = threading.Event()
        # Fetches (and parses) the next page while this one is handled: network and database overlap.
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"follow-{consumer_name}")
        # Parses the pages of a backlog in worker processes shared by the process's followers (parsing.py);
        # `parse_workers=0` parses them in this process.
        self.parser = PageParser(parse_workers)
        self.last_poll: datetime | None = None  # last successful poll (stored too: stats()["last_poll"])
        self.last_error: str | None = None
        self.caught_up: bool | None = None  # whether the last pass reached the end of the feed
        self.failing_since: datetime | None = None  # first failure of the current run of failed polls
        self.polls = 0
        self.failures = 0
        # The feed's head as last seen, the lag behind it, and listeners told what each pass did (metrics, logs).
        self.progress = Progress()
        self._run = PassRun(feed_url, consumer_name)  # the pass in progress, or the last one
        self.tracking = TrackingStore(db, models.Tracking, consumer_name)
        self._poll_times = PollTimes(self.tracking, consumer_name)
        self.dead = DeadLetters(db, models.DeadLetter, consumer_name, self.client)
        self.applier = Applier(consumer_name, db, self.tracking, self.dead, handler, batch_handler,
                               frozenset(event_types) if event_types is not None else None, max_attempts,
                               self.origin)

    @property
    def handler(self) -> Handler:
        return self.applier.handler

    @handler.setter
    def handler(self, handler: Handler) -> None:
        self.applier.handler = handler

    # ---- the pass -------------------------------------------------------------------------------------------
    def poll(self, wait: float | None = None, long_poll: float = 0) -> int:
        """Read the feed from the durable position on, handling new entries; returns how many.

        A call that finds a pass running in this process waits for it (at most `wait` seconds; None: as long as it
        takes) and answers with its outcome (unless its long poll was cut: then it reads the feed itself);
        PassRunning when it is still running (or enough calls wait already).
        With `long_poll`, when the position is on the current page the feed may hold the first request up to that
        many seconds until the page changes (`client.wait_applied` tells whether it did)."""
        return self.gate.run(wait, lambda: self._run_pass(long_poll), f"a pass over {self.feed_url} is already running")

    def _run_pass(self, long_poll: float = 0) -> int:
        self.polls += 1
        if long_poll:
            self.client.wait_applied = None
        run = self._run = PassRun(self.feed_url, self.name)
        cuts = self.client.cuts
        try:
            handled = self._pass(long_poll)
        except Exception as exc:
            if self._stopping.is_set() and isinstance(exc, (Stopped, FeedError)):
                log.info("%s: pass over %s stopped (the process is stopping)", self.name, self.feed_url,
                         extra=run.log_context())
                self.gate.ended(0, None)
                return 0  # what it handled is committed; a request cut short is no failure of the feed
            self.gate.ended(0, exc)
            self.failures += 1
            self.failing_since = self.failing_since or utcnow()
            self.last_error = str(exc) if isinstance(exc, (FeedError, FollowerHalted)) else \
                f"{type(exc).__name__}: {exc}"
            log.warning("%s: poll of %s failed: %s", self.name, self.feed_url, self.last_error,
                        extra=run.log_context())
            self.progress.report(run.report(0, self.last_error))
            raise
        self.gate.ended(handled, None, cut=self.client.cuts != cuts)
        self.last_poll = utcnow()
        self._poll_times.record(self.last_poll, handled)
        self.last_error = self.applier.stuck_reason  # an entry being retried stays the last error
        self.failing_since = None
        self.progress.report(run.report(handled, self.last_error))
        return handled

    def stop(self) -> None:
        """End a pass in progress between two transactions, and its requests in flight; no pass starts after."""
        self._stopping.set()
        self.client.close()
        self.parser.close()
        # Its thread would otherwise live until the interpreter exits: an app built and stopped (tests, an embedder
        # restarting followers) would leave one behind each time. A pass in progress submitting after this stops.
        self._ahead.shutdown(wait=False, cancel_futures=True)

    def _check_stop(self) -> None:
        if self._stopping.is_set():
            raise Stopped()

    def lag(self, position: int) -> Lag | None:
        """How far `position` is behind the feed's head as this follower last saw it; None before it read the feed."""
        return self.progress.lag(position)

    def _pass(self, long_poll: float = 0) -> int:
        self._check_stop()
        self.applier.stuck_reason = None
        state = self._run.state = self.load()
        if state.halted:
            raise FollowerHalted(state.halted)
        walk = self._run.walk = PassWalker(self.client, self._ahead, self.max_back_pages, GROUP_PAGES,
                                           self.progress.saw, self.parser)
        page = first_page(walk, self.origin, state, self.name, long_poll)
        if page is None:
            self.caught_up = True
            self.progress.caught_up(state.position)
            self._run.outcome = "not_modified"
            return 0
        stack = PageStack()
        try:
            page = start_page(walk, page, state.position, stack, self._check_stop)
            confirm(self.tracking, page, state)
            return self._forward(walk, page, stack, state)
        finally:
            stack.close()

    def _forward(self, walk: PassWalker, page: Page, stack: PageStack, state: Tracked) -> int:
        """Handle the page in hand, the stack, then next-archive pages, a group per transaction (forward.py)."""
        self.caught_up = False
        done = forward(walk, page, stack, state, self.applier, self.progress, self.pages_per_pass, self._check_stop)
        if done.outcome == "read" and not done.caught_up:
            log.info("%s: %d pages in this pass; the next pass goes on", self.name, done.pages)
        self.caught_up, self._run.outcome = done.caught_up, done.outcome
        return done.handled

    # ---- dead letters and tracking record, for the consumer's pages and /health ---------------------------
    def dead_letters(self) -> list[dict[str, Any]]:
        """This consumer's dead letters, oldest position first."""
        return self.dead.list()

    def retry_dead_letter(self, letter_id: int) -> None:
        """Run the handler again for a dead letter: removed on success; LookupError if unknown, else re-raises."""
        self.dead.retry(letter_id, self.handler)

    def load(self) -> Tracked:
        """The durable tracking record (created at position 0 if missing)."""
        return self.tracking.load()

    def reset_position(self, position: int) -> Tracked:
        """Set the position (clearing a halt); returns the record as it was."""
        return self.tracking.reset(position)

    def stats(self) -> dict[str, Any]:
        """The durable position and counters."""
        return self.tracking.stats()

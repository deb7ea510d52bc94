"""A domain-agnostic follower of an atomshop Atom feed: durable position, in-order, exactly-once effects.

Algorithm of one pass (poll), all under a per-follower lock:
1. Read the tracking record: position p, bookmark (URL of the page holding p), ETag of the current page.
2. Fetch the bookmark (a new consumer: the feed URL), with If-None-Match when the ETag is known; 304 → done.
3. While the page in hand does not reach back to p+1 (its first position > p+1, or it is empty), walk
   `prev-archive` back, pushing each page passed over onto a PageStack.
4. Going forward: handle the entries after p of the page in hand in position order, then pop the stack,
   then follow `next-archive` until the current page. Every page is fetched at most once per pass; a URL
   met twice is a link loop and stops the pass with FeedError.
5. Per page, one transaction holds the handlers' effects (each in a savepoint) and the compare-and-set
   advance of the tracking record; another instance having moved first → roll back, re-read, carry on
   (common/feeds/follow/applier.py).

Memory: going forward, at most 2 × GROUP_PAGES (25) parsed pages: the group being handled and the next group, read
ahead in a worker thread (common/pagewalk.py) so network, parsing and database overlap. Pages passed over while
walking back are kept as compact entry tuples in a SpooledTemporaryFile (in RAM up to 4 MiB, then on disk) plus
their offsets: O(pages) small integers in memory, O(backlog) bytes on disk, only on a first catch-up or when the
bookmark fell more than a page behind; they are popped a group at a time. While a new consumer walks back, the page
its head names as prev-archive is downloaded during the parse (and used only if the parse agrees).

With a batch handler, a group's (else a page's) entries go to it in one call; if that fails, the transaction is
rolled back and the pages are handled again one by one, then entry by entry (each in its own savepoint) to find
the culprit, count its attempts and, after `max_attempts`, move it to the dead-letter table.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Iterable

from common.feeds.follow.applier import Applier, BatchHandler, Handler
from common.feeds.follow.client import FeedClient, FeedError, Page
from common.feeds.follow.dead_letters import DeadLetters
from common.feeds.follow.pagestack import PageStack
from common.feeds.follow.pagewalk import PassWalker
from common.feeds.follow.progress import Lag, PassReport, Progress
from common.feeds.follow.tracking import Tracked, TrackingModels, TrackingStore, utcnow
from common.feeds.uow import UnitOfWork

__all__ = ["BatchHandler", "FeedFollower", "Handler"]

log = logging.getLogger(__name__)

GROUP_PAGES = 25  # pages handled in one transaction when the batch handler takes them whole


class FeedFollower:
    """Follows one feed for one consumer, applying `handler(session, entry)` to each entry exactly once."""

    def __init__(self, feed_url: str, consumer_name: str, db: UnitOfWork, handler: Handler, models: TrackingModels,
                 *, event_types: Iterable[str] | None = None, max_attempts: int = 3, client: FeedClient | None = None,
                 max_pages: int = 1_000_000, batch_handler: BatchHandler | None = None):
        self.feed_url = feed_url
        self.name = consumer_name
        self.db = db
        self.models = models
        self.client = client or FeedClient()
        self.max_pages = max_pages
        self._lock = threading.Lock()
        # Fetches (and parses) the next page while this one is handled: network and database overlap.
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"follow-{consumer_name}")
        self.last_poll: datetime | None = None  # last successful poll
        self.last_error: str | None = None
        self.polls = 0
        self.failures = 0
        # The feed's head as last seen, the lag behind it, and listeners told what each pass did (metrics, logs).
        self.progress = Progress()
        self._walk: PassWalker | None = None
        self._state: Tracked | None = None
        self._outcome = "failed"
        self.tracking = TrackingStore(db, models.Tracking, consumer_name)
        self.dead = DeadLetters(db, models.DeadLetter, consumer_name, self.client)
        self.applier = Applier(consumer_name, db, self.tracking, self.dead, handler, batch_handler,
                               frozenset(event_types) if event_types is not None else None, max_attempts)

    @property
    def handler(self) -> Handler:
        return self.applier.handler

    @handler.setter
    def handler(self, handler: Handler) -> None:
        self.applier.handler = handler

    # ---- the pass -------------------------------------------------------------------------------------------
    def poll(self) -> int:
        """Read the feed from the durable position to its end, handling new entries; returns how many."""
        with self._lock:  # two polls at once in one process: the second waits, then finds nothing new
            self.polls += 1
            started = time.monotonic()
            self._walk, self._state, self._outcome = None, None, "failed"
            try:
                handled = self._pass()
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, FeedError) else str(exc)
                log.warning("%s: poll of %s failed: %s", self.name, self.feed_url, self.last_error,
                            extra=self._log_context())
                self._report(started, 0)
                raise
            self.last_poll = utcnow()
            self.last_error = self.applier.stuck_reason  # an entry being retried stays the last error
            self._report(started, handled)
            return handled

    def lag(self, position: int) -> Lag | None:
        """How far `position` is behind the feed's head as this follower last saw it; None before it read the feed."""
        return self.progress.lag(position)

    def _report(self, started: float, handled: int) -> None:
        state = self._state
        self.progress.report(PassReport(
            self.feed_url, time.monotonic() - started, self._walk.requests if self._walk else 0, handled,
            self._outcome, state.position if state else None, self.last_error if self._outcome == "failed" else None))

    def _log_context(self) -> dict:
        """`extra=` for log records: structured logs carry the feed and the position."""
        return {"feed": self.feed_url, "consumer": self.name,
                "position": self._state.position if self._state else None}

    def _pass(self) -> int:
        self.applier.stuck_reason = None
        state = self._state = self.load()
        walk = self._walk = PassWalker(self.client, self._ahead, self.max_pages, GROUP_PAGES, self.progress.saw)
        page = walk.fetch(state.bookmark or self.feed_url, state.etag)
        if page is None:
            self.progress.caught_up(state.position)
            self._outcome = "not_modified"
            return 0
        stack = PageStack()
        try:
            try:
                while not _reaches_back_to(page, state.position):
                    if page.prev is None:
                        if page.entries or state.position:
                            raise FeedError(f"{page.url}: the feed holds no position {state.position + 1} "
                                            f"(it begins at {page.first}) and the page has no prev-archive link")
                        break  # an empty feed
                    stack.push(page)
                    page = walk.back(page.prev, speculate=state.position == 0)
            finally:
                walk.settle()
            handled, group, error, ahead = 0, [page], None, None
            try:
                while True:
                    if error is None and not stack and group[-1].next is not None:  # read on while handling these
                        ahead = walk.read_ahead(group[-1].next)
                    count, complete = self.applier.handle_group(group, state)
                    handled += count
                    self.progress.handled_up_to(group, state.position)
                    if not complete:
                        self._outcome = "stuck"
                        break  # an entry is being retried: nothing after it may be handled yet
                    if error is not None:
                        raise error  # the pages before the broken one are handled and committed
                    if stack:
                        group = [stack.pop() for _ in range(min(GROUP_PAGES, len(stack)))]
                    elif ahead is not None:
                        (group, error), ahead = ahead.result(), None
                        if not group:
                            raise error
                    else:
                        self._outcome = "read"
                        break
            finally:
                if ahead is not None:  # never leave a fetch running into the next pass
                    ahead.exception()
            return handled
        finally:
            stack.close()

    # ---- dead letters and tracking record, for the consumer's pages and /health ---------------------------
    def dead_letters(self) -> list[dict]:
        """This consumer's dead letters, oldest position first."""
        return self.dead.list()

    def retry_dead_letter(self, letter_id: int) -> None:
        """Run the handler again for a dead letter: removed on success; LookupError if unknown, else re-raises."""
        self.dead.retry(letter_id, self.handler)

    def load(self) -> Tracked:
        """The durable tracking record (created at position 0 if missing)."""
        return self.tracking.load()

    def stats(self) -> dict:
        """The durable position and counters."""
        return self.tracking.stats()


def _reaches_back_to(page: Page, position: int) -> bool:
    """Whether handling can start on this page: it holds position+1, or everything on it is handled."""
    return page.first is not None and page.first <= position + 1

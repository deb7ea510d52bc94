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
   advance of the tracking record; another instance having moved first → roll back, re-read, carry on.

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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Callable, Iterable

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from common.feeds.uow import UnitOfWork
from common.feeds.follow.client import FeedClient, FeedEntry, FeedError, Page
from common.feeds.follow.dead_letters import DeadLetters
from common.feeds.follow.pagestack import PageStack
from common.feeds.follow.pagewalk import PassWalker
from common.feeds.follow.tracking import Tracked, TrackingModels, TrackingStore, utcnow

log = logging.getLogger(__name__)

GROUP_PAGES = 25  # pages handled in one transaction when the batch handler takes them whole
Handler = Callable[[Session, FeedEntry], None]
BatchHandler = Callable[[Session, list[FeedEntry]], None]


class _Conflict(Exception):
    """Another instance advanced the tracking record first."""


class _BatchFailed(Exception):
    """A group of pages could not be handled as one batch."""


class FeedFollower:
    """Follows one feed for one consumer, applying `handler(session, entry)` to each entry exactly once."""

    def __init__(self, feed_url: str, consumer_name: str, db: UnitOfWork, handler: Handler, models: TrackingModels,
                 *, event_types: Iterable[str] | None = None, max_attempts: int = 3, client: FeedClient | None = None,
                 max_pages: int = 1_000_000, batch_handler: BatchHandler | None = None):
        self.feed_url = feed_url
        self.name = consumer_name
        self.db = db
        self.handler = handler
        self.batch_handler = batch_handler
        self.models = models
        self.event_types = frozenset(event_types) if event_types is not None else None
        self.max_attempts = max_attempts
        self.client = client or FeedClient()
        self.max_pages = max_pages
        self._lock = threading.Lock()
        # Fetches (and parses) the next page while this one is handled: network and database overlap.
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"follow-{consumer_name}")
        self.last_poll: datetime | None = None  # last successful poll
        self.last_error: str | None = None
        self.polls = 0
        self.failures = 0
        self._stuck_reason: str | None = None
        self.tracking = TrackingStore(db, models.Tracking, consumer_name)
        self.dead = DeadLetters(db, models.DeadLetter, consumer_name, self.client)

    # ---- the pass -------------------------------------------------------------------------------------------
    def poll(self) -> int:
        """Read the feed from the durable position to its end, handling new entries; returns how many."""
        with self._lock:  # two polls at once in one process: the second waits, then finds nothing new
            self.polls += 1
            try:
                handled = self._pass()
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, FeedError) else str(exc)
                log.warning("%s: poll of %s failed: %s", self.name, self.feed_url, self.last_error)
                raise
            self.last_poll = utcnow()
            if self._stuck_reason is None:
                self.last_error = None
            return handled

    def _pass(self) -> int:
        self._stuck_reason = None
        state = self.load()
        walk = PassWalker(self.client, self._ahead, self.max_pages, GROUP_PAGES)
        page = walk.fetch(state.bookmark or self.feed_url, state.etag)
        if page is None:
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
                    count, complete = self._handle_group(group, state)
                    handled += count
                    if not complete:
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
                        break
            finally:
                if ahead is not None:  # never leave a fetch running into the next pass
                    ahead.exception()
            return handled
        finally:
            stack.close()

    # ---- one page, one transaction ----------------------------------------------------------------------------
    def _handle_group(self, group: list[Page], state: Tracked) -> tuple[int, bool]:
        """Handle consecutive pages: in one transaction when the batch handler takes them whole (fewer commits
        on a long catch-up), else page by page. Returns (handled, whether all were finished)."""
        if len(group) > 1 and self.batch_handler is not None:
            last = group[-1]
            merged = Page(last.url, tuple(e for page in group for e in page.entries), group[0].prev, last.next,
                          last.is_archive, last.etag)
            try:
                return self._handle_page(merged, state, batch_only=True)
            except _BatchFailed:
                pass  # page by page, entry by entry where a page's batch fails
        handled = 0
        for page in group:
            count, complete = self._handle_page(page, state)
            handled += count
            if not complete:
                return handled, False
        return handled, True

    def _handle_page(self, page: Page, state: Tracked, batch_only: bool = False) -> tuple[int, bool]:
        """Handle the page's entries after the position; returns (handled, whether the page was finished)."""
        mode = "batch_only" if batch_only else "batch"
        while True:
            try:
                return self._try_page(page, state, mode)
            except _Conflict:
                fresh = self.load()
                log.info("%s: another instance moved from %d to %d; continuing", self.name, state.position,
                         fresh.position)
                state.__dict__.update(fresh.__dict__)
            except _BatchFailed:
                if batch_only:
                    raise
                mode = "entries"  # the transaction was rolled back; now one savepoint per entry

    def _try_page(self, page: Page, state: Tracked, mode: str = "batch") -> tuple[int, bool]:
        todo = [e for e in page.entries if e.position > state.position]
        if todo and todo[0].position != state.position + 1:
            raise FeedError(f"{page.url}: expected position {state.position + 1} next, found {todo[0].position}")
        for before, after in zip(todo, todo[1:]):
            if after.position != before.position + 1:
                raise FeedError(f"{page.url}: gap in the feed between positions {before.position} and "
                                f"{after.position}")
        new = Tracked(**state.__dict__)
        counts = {"handled": 0, "skipped": 0, "dead_lettered": 0}
        complete = True
        with self.db.write() as session:
            # SQLite's BEGIN IMMEDIATE already serializes writers; elsewhere the row lock makes a second
            # instance wait here instead of doing the page's work only to lose the compare-and-set.
            if not self.db.is_sqlite and self.tracking.read(session, lock=True).position != state.position:
                raise _Conflict()
            if mode != "entries" and self._batch_applies(todo, new):
                self._apply_batch(session, todo, new, counts)
                todo = []
            elif mode == "batch_only" and todo:
                raise _BatchFailed()
            for entry in todo:
                outcome = self._apply(session, entry, new)
                if outcome is None:
                    complete = False
                    break
                counts[outcome] += 1
                new.position = entry.position
            if page.first is None or page.first <= new.position:  # this page now holds the position
                new.bookmark = page.url
                # The ETag lets the next pass stop at a 304, so only once everything on the page is handled.
                new.etag = page.etag if complete and page.next is None else None
            if new == state and not any(counts.values()):
                return 0, complete
            if not self.tracking.advance(session, state, new, counts, self._stuck_reason):
                raise _Conflict()
        state.__dict__.update(new.__dict__)
        return counts["handled"], complete

    def _subscribed(self, entry: FeedEntry) -> bool:
        return self.event_types is None or entry.event_type in self.event_types

    def _batch_applies(self, todo: list[FeedEntry], new: Tracked) -> bool:
        wanted = sum(1 for entry in todo if self._subscribed(entry))
        return self.batch_handler is not None and wanted >= 2 and new.retry_position is None

    def _apply_batch(self, session: Session, todo: list[FeedEntry], new: Tracked, counts: dict) -> None:
        """The fast path: all the entries in one handler call; on failure _BatchFailed rolls the transaction back
        and the page is done again entry by entry, to find the culprit, count its attempts, dead-letter it."""
        wanted = [entry for entry in todo if self._subscribed(entry)]
        try:
            self.batch_handler(session, wanted)
        except OperationalError:
            raise
        except Exception as exc:
            log.info("%s: batch of positions %d-%d failed (%s); handling them one by one", self.name,
                     todo[0].position, todo[-1].position, exc)
            raise _BatchFailed() from exc
        counts["handled"] += len(wanted)
        counts["skipped"] += len(todo) - len(wanted)
        new.position = todo[-1].position

    def _apply(self, session: Session, entry: FeedEntry, new: Tracked) -> str | None:
        """Run the handler in a savepoint: 'handled', 'skipped', 'dead_lettered', or None to retry later."""
        if not self._subscribed(entry):
            return "skipped"  # an event type this consumer does not subscribe to, on purpose
        try:
            with session.begin_nested():
                self.handler(session, entry)
        except OperationalError:
            raise  # the database itself failed: not the entry's fault
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            attempts = new.retry_attempts + 1 if new.retry_position == entry.position else 1
            log.warning("%s: entry %s at position %d failed (attempt %d of %d): %s", self.name, entry.id,
                        entry.position, attempts, self.max_attempts, reason)
            if attempts < self.max_attempts:
                new.retry_position, new.retry_attempts = entry.position, attempts
                self._stuck_reason = f"position {entry.position}, attempt {attempts} of {self.max_attempts}: {reason}"
                self.last_error = self._stuck_reason
                return None
            self.dead.add(session, entry, reason, attempts)
            new.retry_position, new.retry_attempts = None, 0
            self._stuck_reason = None
            return "dead_lettered"
        if new.retry_position == entry.position:
            new.retry_position, new.retry_attempts = None, 0
            self._stuck_reason = None
        return "handled"

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

"""One follower's transactions: a group of pages, a page or an entry applied with the advance of its position.

Per page (or group of pages), one transaction holds the handlers' effects and the compare-and-set advance of the
tracking record; another instance having moved first rolls it back, and handling resumes from the fresh record.
With a batch handler the entries go to it in one call; if that fails, the transaction is rolled back and the page
is handled again entry by entry (each in its own savepoint) to find the culprit, count its attempts and, after
`max_attempts`, move it to the dead-letter table.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from common.feeds.follow.client import FeedEntry, FeedError, Page
from common.feeds.follow.dead_letters import DeadLetters
from common.feeds.follow.errors import FollowerHalted
from common.feeds.follow.origin import Origin
from common.feeds.follow.tracking import Tracked, TrackingStore
from common.feeds.uow import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[Session, FeedEntry], None]
BatchHandler = Callable[[Session, list[FeedEntry]], None]


class _Conflict(Exception):
    """Another instance advanced the tracking record first."""


class _BatchFailed(Exception):
    """A group of pages could not be handled as one batch."""


class Applier:
    """Applies a follower's handler to pages of entries, each page's effects and advance in one transaction."""

    def __init__(self, name: str, db: UnitOfWork, tracking: TrackingStore, dead: DeadLetters, handler: Handler,
                 batch_handler: BatchHandler | None, event_types: frozenset[str] | None, max_attempts: int,
                 origin: Origin | None = None):
        self.name = name
        self.origin = origin  # an entry whose alternate link leads elsewhere fails (a handler may store the link)
        self.db = db
        self.tracking = tracking
        self.dead = dead
        self.handler = handler
        self.batch_handler = batch_handler
        self.event_types = event_types
        self.max_attempts = max_attempts
        # Why the entry after the position is being retried, if it is (kept in the tracking record too).
        self.stuck_reason: str | None = None

    def handle_group(self, group: list[Page], state: Tracked) -> tuple[int, bool]:
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
                fresh = self.tracking.load()
                if fresh.halted:
                    raise FollowerHalted(fresh.halted) from None
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
        for before, after in zip(todo, todo[1:], strict=False):
            if after.position != before.position + 1:
                raise FeedError(f"{page.url}: gap in the feed between positions {before.position} and "
                                f"{after.position}")
        new = Tracked(**state.__dict__)
        counts = {"handled": 0, "skipped": 0, "dead_lettered": 0}
        complete = True
        with self.db.write() as session:
            # SQLite's BEGIN IMMEDIATE already serializes writers; elsewhere the row lock makes a second
            # instance wait here instead of doing the page's work only to lose the compare-and-set.
            if not self.db.is_sqlite:
                locked = self.tracking.read(session, lock=True)
                if locked.position != state.position or locked.halted:
                    raise _Conflict()
            batch_handler = self._batch_handler_for(todo, new) if mode != "entries" else None
            if batch_handler is not None:
                self._apply_batch(session, batch_handler, todo, new, counts)
                todo = []
            elif mode == "batch_only" and todo:
                raise _BatchFailed()
            for entry in todo:
                outcome = self._apply(session, entry, new)
                if outcome is None:
                    complete = False
                    break
                counts[outcome] += 1
                new.position, new.entry_id, new.entry_updated = entry.position, entry.id, entry.updated
            if _bookmarkable(page, new.position):
                new.bookmark = page.url
                # The ETag lets the next pass stop at a 304, so only once everything on the page is handled.
                new.etag = page.etag if complete and page.next is None and page.last in (None, new.position) \
                    else None
            if new == state and not any(counts.values()):
                return 0, complete
            if not self.tracking.advance(session, state, new, counts, self.stuck_reason):
                raise _Conflict()
        state.__dict__.update(new.__dict__)
        return counts["handled"], complete

    def _check_link(self, entry: FeedEntry) -> None:
        if entry.link is not None and self.origin is not None:
            self.origin.check(entry.link, "alternate link")

    def _subscribed(self, entry: FeedEntry) -> bool:
        return self.event_types is None or entry.event_type in self.event_types

    def _batch_handler_for(self, todo: list[FeedEntry], new: Tracked) -> BatchHandler | None:
        """The batch handler, if the entries to do are for it (two or more subscribed, none being retried)."""
        wanted = sum(1 for entry in todo if self._subscribed(entry))
        return self.batch_handler if wanted >= 2 and new.retry_position is None else None

    def _apply_batch(self, session: Session, batch_handler: BatchHandler, todo: list[FeedEntry], new: Tracked,
                     counts: dict[str, int]) -> None:
        """The fast path: all the entries in one handler call; on failure _BatchFailed rolls the transaction back
        and the page is done again entry by entry, to find the culprit, count its attempts, dead-letter it."""
        wanted = [entry for entry in todo if self._subscribed(entry)]
        try:
            for entry in wanted:
                self._check_link(entry)
            batch_handler(session, wanted)
        except OperationalError:
            raise
        except Exception as exc:
            log.info("%s: batch of positions %d-%d failed (%s); handling them one by one", self.name,
                     todo[0].position, todo[-1].position, exc)
            raise _BatchFailed() from exc
        counts["handled"] += len(wanted)
        counts["skipped"] += len(todo) - len(wanted)
        new.position, new.entry_id, new.entry_updated = todo[-1].position, todo[-1].id, todo[-1].updated

    def _apply(self, session: Session, entry: FeedEntry, new: Tracked) -> str | None:
        """Run the handler in a savepoint: 'handled', 'skipped', 'dead_lettered', or None to retry later."""
        if not self._subscribed(entry):
            return "skipped"  # an event type this consumer does not subscribe to, on purpose
        try:
            self._check_link(entry)
            with session.begin_nested():
                self.handler(session, entry)
        except OperationalError:
            raise  # the database itself failed: not the entry's fault
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            attempts = new.retry_attempts + 1 if new.retry_position == entry.position else 1
            log.warning("%s: entry %s at position %d failed (attempt %d of %d): %s", self.name, entry.id,
                        entry.position, attempts, self.max_attempts, reason,
                        extra={"consumer": self.name, "position": entry.position, "entry_id": entry.id})
            if attempts < self.max_attempts:
                new.retry_position, new.retry_attempts = entry.position, attempts
                self.stuck_reason = f"position {entry.position}, attempt {attempts} of {self.max_attempts}: {reason}"
                return None
            self.dead.add(session, entry, reason, attempts)
            new.retry_position, new.retry_attempts = None, 0
            self.stuck_reason = None
            return "dead_lettered"
        if new.retry_position == entry.position:
            new.retry_position, new.retry_attempts = None, 0
            self.stuck_reason = None
        return "handled"


def _bookmarkable(page: Page, position: int) -> bool:
    """Whether the next pass may start at `page` for `position`: the page holds it, or is the current page (its
    URL is the feed's, never behind). Not an archive wholly before it: another instance may have moved the
    position past the page in hand, and a bookmark behind the position makes the next pass walk forward through
    a page still being filled (see start.py, to_position)."""
    if page.next is None:
        return True
    return page.first is not None and page.last is not None and page.first <= position <= page.last

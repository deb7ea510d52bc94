"""Where a pass starts: the bookmarked page, walked back to the page holding the position (steps 2 and 3 of a
pass, see follower.py, over the pass's pages: pagewalk.py); the history check then decides whether handling may
start there (history.py)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from common.feeds.follow.client import FeedError, Page
from common.feeds.follow.errors import PageGone
from common.feeds.follow.history import behind, holds
from common.feeds.follow.origin import Origin
from common.feeds.follow.pagestack import PageStack
from common.feeds.follow.pagewalk import PassWalker
from common.feeds.follow.tracking import Tracked

log = logging.getLogger(__name__)


def first_page(walk: PassWalker, origin: Origin, state: Tracked, consumer: str, long_poll: float = 0) -> Page | None:
    """The bookmarked page (None: unchanged since its ETag, held up to `long_poll` s); the feed URL when there is
    none, it is off the feed's origin (an older configuration), or it is gone."""
    bookmark = state.bookmark if origin.holds(state.bookmark) else None
    if bookmark is None:
        return walk.fetch(origin.feed_url, handled=state.position)
    try:
        return walk.fetch(bookmark, state.etag, long_poll, handled=state.position)
    except PageGone:
        log.info("%s: bookmark %s is gone; reading %s", consumer, bookmark, origin.feed_url)
        return walk.fetch(origin.feed_url, handled=state.position)


def start_page(walk: PassWalker, page: Page, position: int, stack: PageStack, check_stop: Callable[[], None]) -> Page:
    """From `page`, the page holding `position` (pages passed over pushed onto `stack`), or where the feed shows it
    no longer holds it. A current page ending before the position may be a cache's copy older than what was
    handled (another instance read a newer one by a long poll, which passes the cache): the publisher is asked."""
    try:
        page = to_position(walk, page, position, stack, check_stop)
        if behind(page, position):  # a cache's older copy, or a rewound feed: the publisher decides
            fresh = ask_origin(walk, page, position)
            page = page if fresh is None else to_position(walk, fresh, position, stack, check_stop)
        return page
    finally:
        walk.settle()


def to_position(walk: PassWalker, page: Page, position: int, stack: PageStack,
                check_stop: Callable[[], None]) -> Page:
    """Walk back from `page` to the page holding `position` (for 0: the oldest), pushing the pages passed over
    onto `stack`. Where the feed no longer holds the position, the page it ended on (the history check says)."""
    while not holds(page, position):
        check_stop()
        if page.prev is None:
            if page.entries and not position:
                raise FeedError(f"{page.url}: the feed begins at position {page.first}, not 1, and the page "
                                "has no prev-archive link")
            return page  # an empty feed, or one that begins after the position: the history check says
        stack.push(page)
        page = walk.back(page.prev, position)
    while (position and page.entry_at(position) is None and page.last is not None and page.last < position
           and page.next is not None):
        page = walk.next_archive(page.next, page.last)  # pages laid out anew: the position lies further on
    return page


def ask_origin(walk: PassWalker, page: Page, handled: int) -> Page | None:
    """`page` asked for again as a one-second long poll with its own validator, which a front door passes to the
    publisher uncached: the publisher's current page, or None (304) when `page` is it."""
    walk.seen.discard(page.url)
    mode = walk.client.wait_applied  # this one long poll says nothing of the poller's mode
    try:
        # Not cuttable: a POST /poll cutting held long polls would turn it into a 304, "the page is the
        # publisher's", and a history check that fails on a stale copy would halt the follower for good.
        return walk.fetch(page.url, page.etag, 1, handled, cuttable=False)
    finally:
        walk.client.wait_applied = mode

"""Where a pass starts: the bookmarked page, walked back to the page holding the position (steps 2 and 3 of a
pass, see follower.py); the history check then decides whether handling may start there (history.py)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from common.feeds.follow.client import Page
from common.feeds.follow.errors import PageGone
from common.feeds.follow.history import behind
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
        page = walk.to_position(page, position, stack, check_stop)
        if behind(page, position):  # a cache's older copy, or a rewound feed: the publisher decides
            fresh = walk.ask_origin(page, position)
            page = page if fresh is None else walk.to_position(fresh, position, stack, check_stop)
        return page
    finally:
        walk.settle()

"""Going forward in a pass: the page in hand, the pages passed over walking back, then next-archive pages."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from common.feeds.follow.applier import Applier
from common.feeds.follow.client import FeedError, Page
from common.feeds.follow.pagestack import PageStack
from common.feeds.follow.pagewalk import PassWalker
from common.feeds.follow.progress import Progress
from common.feeds.follow.tracking import Tracked

GROUP_PAGES = 25  # pages handled in one transaction when the batch handler takes them whole


@dataclass(frozen=True)
class Forward:
    """How going forward ended: entries handled, the pass's outcome, whether it reached the feed's end, pages read."""

    handled: int
    outcome: str  # "stuck": an entry is being retried; "read": the pages are handled
    caught_up: bool
    pages: int


def forward(walk: PassWalker, page: Page, stack: PageStack, state: Tracked, applier: Applier, progress: Progress,
            pages_per_pass: int, check_stop: Callable[[], None]) -> Forward:
    """Handle the page in hand, the stack, then next-archive pages, a group per transaction."""
    handled, group, pages = 0, [page], 1
    error: FeedError | None = None
    ahead: Future[tuple[list[Page], FeedError | None]] | None = None
    try:
        while True:
            more = pages < pages_per_pass
            if error is None and more and not stack and group[-1].next is not None:  # read on meanwhile
                ahead = walk.read_ahead(group[-1].next, pages_per_pass - pages, group[-1].last)
            count, complete = applier.handle_group(group, state)
            handled += count
            progress.handled_up_to(group, state.position)
            if not complete:
                return Forward(handled, "stuck", False, pages)  # nothing after the retried entry may be handled yet
            if error is not None:
                raise error  # the pages before the broken one are handled and committed
            check_stop()
            if stack:
                group = [stack.pop() for _ in range(min(GROUP_PAGES, len(stack)))]
            elif ahead is not None:
                (group, error), ahead = ahead.result(), None
                if not group:
                    assert error is not None  # a read ahead stops before its first page only on an error
                    raise error
            elif not more and group[-1].next is not None:
                return Forward(handled, "read", False, pages)  # the next pass goes on
            else:
                return Forward(handled, "read", True, pages)
            pages += len(group)
    finally:
        if ahead is not None:  # never leave a fetch running into the next pass
            ahead.exception()

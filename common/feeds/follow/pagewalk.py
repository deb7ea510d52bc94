"""One pass over a paged feed: every page fetched at most once, link loops refused, next pages read ahead."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from common.feeds.follow.client import Download, FeedClient, FeedError, Page, parse_page
from common.feeds.follow.errors import PageGone
from common.feeds.follow.history import holds
from common.feeds.follow.pagestack import PageStack
from common.feeds.follow.prescan import prescan

__all__ = ["PageGone", "PassWalker"]


class PassWalker:
    """The pages of one pass of a follower; `executor` (one worker) overlaps network and parsing with handling."""

    def __init__(self, client: FeedClient, executor: ThreadPoolExecutor, max_pages: int, group_pages: int,
                 saw: Callable[[Page], None] = lambda page: None):
        """`max_pages`: the most pages walked back in one pass; `saw` is told of every page read."""
        self.client = client
        self.saw = saw  # told of every page read (the follower learns the feed's head from them)
        self.requests = 0  # page requests made, a 304 included
        self.executor = executor
        self.max_pages = max_pages
        self.group_pages = group_pages
        # The pages' final URLs: a page still being filled is redirected to /feed, and may have been filled
        # by the time /feed answers, so its own URL must stay followable from the next page.
        self.seen: set[str] = set()
        self._guess: tuple[str, Future[Download | None]] | None = None
        self.back_pages = 0

    def fetch(self, url: str, etag: str | None = None, wait: float = 0, handled: int = 0) -> Page | None:
        """The page at `url`, or None for 304 Not Modified to `etag` (held up to `wait` s by a long-polling feed);
        entries before position `handled` are not parsed when the page holds it (see parse_page)."""
        self._check_link(url)
        self.requests += 1
        page = self.client.fetch(url, etag, wait, handled)
        if page is not None:
            self.seen.add(page.url)
            self.saw(page)
        return page

    def back(self, url: str, speculate: bool, handled: int = 0) -> Page:
        """The page at `url` (a prev-archive link), using a speculative download of it if one is under way; entries
        before position `handled` are not parsed when the page holds it (see parse_page).

        A new consumer walks back to the oldest page, so while feedparser parses a page it already downloads the
        one the page's own XML names as prev-archive (`speculate`), as the pre-scan read it: never a URL in a
        comment, never one off the feed's origin. The download is used only if the full parse agrees.
        """
        self._check_link(url)
        self.back_pages += 1
        self.requests += 1
        if self.back_pages > self.max_pages:
            raise FeedError(f"more than {self.max_pages} pages walked back in one pass without reaching the "
                            f"position; giving up at {url}")
        guess, self._guess = self._guess, None
        if guess is not None and guess[0] == url:
            got = guess[1].result()
        else:
            if guess is not None:
                guess[1].exception()  # a wrong guess: let it finish, unused
            got = self.client.download(url)
        if got is None:
            raise FeedError(f"GET {url}: 304 Not Modified to a request without a validator")
        body, etag, final_url = got
        self.seen.add(final_url)
        scan = prescan(final_url, body)
        nxt = scan.links.get("prev-archive")
        origin = self.client.origin
        if speculate and nxt and nxt not in self.seen and (origin is None or origin.holds(nxt)):
            self._guess = (nxt, self.executor.submit(self.client.download, nxt))
        page = parse_page(final_url, body, etag, scan, handled)
        self.saw(page)
        return page

    def to_position(self, page: Page, position: int, stack: PageStack, check_stop: Callable[[], None]) -> Page:
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
            page = self.back(page.prev, speculate=position == 0, handled=position)
        while (position and page.entry_at(position) is None and page.last is not None and page.last < position
               and page.next is not None):
            page = self._fetch_unconditionally(page.next)  # pages laid out anew: the position lies further on
        return page

    def settle(self) -> None:
        """Wait for a speculative download still under way, so none runs into the next pass."""
        if self._guess is not None:
            self._guess[1].exception()
            self._guess = None

    def read_ahead(self, url: str, limit: int | None = None,
                   after: int | None = None) -> Future[tuple[list[Page], FeedError | None]]:
        """Start reading up to `group_pages` (at most `limit`) pages along next-archive from `url` in the worker
        thread; `after` is the last position of the page that links to `url`.

        The future gives (pages, the FeedError that stopped it early or None): pages before a broken one still
        get handled.
        """
        return self.executor.submit(self._read_group, url, min(self.group_pages, limit or self.group_pages), after)

    def _read_group(self, url: str | None, limit: int, after: int | None) -> tuple[list[Page], FeedError | None]:
        pages: list[Page] = []
        try:
            while url is not None and len(pages) < limit:
                page = self._fetch_unconditionally(url)
                if after is not None and page.url != url and page.first is not None and page.first > after + 1:
                    # `url` was the page being filled (the publisher redirected it to the current page) and it
                    # filled up before the redirect was followed: the current page is now the one after it.
                    # Read `url` again, an archive now, rather than skip its entries.
                    self.seen.discard(page.url)
                    page = self._fetch_unconditionally(url)
                pages.append(page)
                after = page.last if page.last is not None else after
                url = page.next
        except FeedError as exc:
            return pages, exc
        return pages, None

    def _fetch_unconditionally(self, url: str) -> Page:
        page = self.fetch(url)
        if page is None:
            raise FeedError(f"GET {url}: 304 Not Modified to a request without a validator")
        return page

    def _check_link(self, url: str) -> None:
        if url in self.seen:
            raise FeedError(f"link loop: {url} was reached twice in one pass")
        origin = self.client.origin
        if origin is not None:
            origin.check(url)

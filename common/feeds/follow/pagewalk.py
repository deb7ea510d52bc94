"""One pass over a paged feed: every page fetched at most once, link loops refused, next pages read ahead."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from common.feeds.follow.client import FeedClient, FeedError, Page, parse_page, sniff_prev_archive


class PassWalker:
    """The pages of one pass of a follower; `executor` (one worker) overlaps network and parsing with handling."""

    def __init__(self, client: FeedClient, executor: ThreadPoolExecutor, max_pages: int, group_pages: int,
                 saw: Callable[[Page], None] = lambda page: None):
        self.client = client
        self.saw = saw  # told of every page read (the follower learns the feed's head from them)
        self.requests = 0  # page requests made, a 304 included
        self.executor = executor
        self.max_pages = max_pages
        self.group_pages = group_pages
        # The pages' final URLs: a page still being filled is redirected to /feed, and may have been filled
        # by the time /feed answers, so its own URL must stay followable from the next page.
        self.seen: set[str] = set()
        self._guess: tuple[str, Future] | None = None

    def fetch(self, url: str, etag: str | None = None) -> Page | None:
        """The page at `url`, or None for 304 Not Modified to `etag`."""
        self._check_link(url)
        self.requests += 1
        page = self.client.fetch(url, etag)
        if page is not None:
            self.seen.add(page.url)
            self.saw(page)
        return page

    def back(self, url: str, speculate: bool) -> Page:
        """The page at `url` (a prev-archive link), using a speculative download of it if one is under way.

        A new consumer walks back to the oldest page, so while it parses a page it already downloads the one
        its head names as prev-archive (`speculate`); the download is used only if the parsed link agrees.
        """
        self._check_link(url)
        self.requests += 1
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
        if speculate:
            nxt = sniff_prev_archive(body)
            if nxt and nxt not in self.seen:
                self._guess = (nxt, self.executor.submit(self.client.download, nxt))
        page = parse_page(final_url, body, etag)
        self.saw(page)
        return page

    def settle(self) -> None:
        """Wait for a speculative download still under way, so none runs into the next pass."""
        if self._guess is not None:
            self._guess[1].exception()
            self._guess = None

    def read_ahead(self, url: str) -> Future:
        """Start reading up to `group_pages` pages along next-archive from `url` in the worker thread.

        The future gives (pages, the FeedError that stopped it early or None): pages before a broken one still
        get handled.
        """
        return self.executor.submit(self._read_group, url)

    def _read_group(self, url: str | None) -> tuple[list[Page], FeedError | None]:
        pages: list[Page] = []
        try:
            while url is not None and len(pages) < self.group_pages:
                page = self.fetch(url)
                if page is None:
                    raise FeedError(f"GET {url}: 304 Not Modified to a request without a validator")
                pages.append(page)
                url = page.next
        except FeedError as exc:
            return pages, exc
        return pages, None

    def _check_link(self, url: str) -> None:
        if url in self.seen:
            raise FeedError(f"link loop: {url} was reached twice in one pass")
        if len(self.seen) >= self.max_pages:
            raise FeedError(f"more than {self.max_pages} pages in one pass; giving up at {url}")

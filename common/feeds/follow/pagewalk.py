"""One pass over a paged feed: every page fetched at most once, link loops refused, pages read and parsed ahead.

Reading a backlog (walking back, a group read ahead going forward), the walk downloads along the link each page's
pre-scan read (its own XML link, never one in a comment, never one off the feed's origin) while worker processes
parse the pages before it (parsing.py): up to AHEAD pages in flight. Walking back, it goes no further ahead than
the page whose pre-scan says it holds the position. A page fetched ahead is used only once the full parse of the
page before agrees that it links there. The last page of a run (no link on, or the position reached) is parsed in
the calling thread, so a follower that keeps up never starts a process.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from common.feeds.follow.client import FeedClient, FeedError, Page
from common.feeds.follow.errors import PageGone, Stopped
from common.feeds.follow.parsing import PageParser, Parsing
from common.feeds.follow.prescan import prescan

__all__ = ["PageGone", "PassWalker"]

AHEAD = 4  # pages downloaded and being parsed beyond the one in hand: enough to keep two workers busy


class PassWalker:
    """The pages of one pass of a follower; `executor` (one worker thread) reads the next pages while a group is
    handled, and `parser` parses pages of a backlog in worker processes."""

    def __init__(self, client: FeedClient, executor: ThreadPoolExecutor, max_pages: int, group_pages: int,
                 saw: Callable[[Page], None] = lambda page: None, parser: PageParser | None = None):
        """`max_pages`: the most pages walked back in one pass; `saw` is told of every page read."""
        self.client = client
        self.saw = saw  # told of every page read (the follower learns the feed's head from them)
        self.requests = 0  # page requests made, a 304 included
        self.executor = executor
        self.parser = parser or PageParser(workers=0)
        self.max_pages = max_pages
        self.group_pages = group_pages
        # The pages' final URLs: a page still being filled is redirected to /feed, and may have been filled
        # by the time /feed answers, so its own URL must stay followable from the next page.
        self.seen: set[str] = set()
        self._behind: deque[Parsing] = deque()  # walking back: the pages fetched ahead, in walking order
        self.back_pages = 0

    def fetch(self, url: str, etag: str | None = None, wait: float = 0, handled: int = 0,
              cuttable: bool = True) -> Page | None:
        """The page at `url`, or None for 304 Not Modified to `etag` (held up to `wait` s by a long-polling feed);
        entries before position `handled` are not parsed when the page holds it (see parse_page)."""
        self._check_link(url)
        self.requests += 1
        page = self.client.fetch(url, etag, wait, handled, cuttable)
        if page is not None:
            self.seen.add(page.url)
            self.saw(page)
        return page

    def back(self, url: str, position: int) -> Page:
        """The page at `url` (a prev-archive link), walking back to the page holding `position` (0: the oldest).

        While the walk goes on, the pages beyond are fetched and parsed meanwhile (see the module's docstring),
        as far as the page whose pre-scan says it holds the position: the usual walk, from a current page that
        filled up to the one before, fetches nothing ahead and parses here. On the page that holds `position`,
        the entries before it are not parsed (see parse_page)."""
        self._check_link(url)
        self.back_pages += 1
        if self.back_pages > self.max_pages:
            raise FeedError(f"more than {self.max_pages} pages walked back in one pass without reaching the "
                            f"position; giving up at {url}")
        item = self._next(self._behind, url, "prev-archive", position)
        self._fill(self._behind, item, "prev-archive", self.max_pages - self.back_pages, position)
        return self._take(item)

    def next_archive(self, url: str, after: int) -> Page:
        """The page at next-archive `url` of a page ending at position `after` (see _overtaken)."""
        page = self._fetch_unconditionally(url)
        return self._fetch_again(url, page) if self._overtaken(url, page, after) else page

    def settle(self) -> None:
        """Drop the pages fetched ahead that the walk back did not need, so no parse runs into the next pass."""
        self._drop(self._behind)

    def read_ahead(self, url: str, limit: int | None = None,
                   after: int | None = None) -> Future[tuple[list[Page], FeedError | None]]:
        """Start reading up to `group_pages` (at most `limit`) pages along next-archive from `url` in the worker
        thread; `after` is the last position of the page that links to `url`.

        The future gives (pages, the FeedError that stopped it early or None): pages before a broken one still
        get handled.
        """
        try:
            return self.executor.submit(self._read_group, url, min(self.group_pages, limit or self.group_pages),
                                        after)
        except RuntimeError as exc:  # the follower's stop() shut the executor down
            raise Stopped() from exc

    def _read_group(self, url: str | None, limit: int, after: int | None) -> tuple[list[Page], FeedError | None]:
        pages: list[Page] = []
        ahead: deque[Parsing] = deque()
        try:
            while url is not None and len(pages) < limit:
                self._check_link(url)
                item = self._next(ahead, url, "next-archive")
                self._fill(ahead, item, "next-archive", limit - len(pages) - 1)
                page = self._take(item)
                if self._overtaken(url, page, after):
                    self._drop(ahead)
                    page = self._fetch_again(url, page)
                pages.append(page)
                after = page.last if page.last is not None else after
                url = page.next
        except FeedError as exc:
            return pages, exc
        finally:
            self._drop(ahead)
        return pages, None

    def _next(self, ahead: deque[Parsing], url: str, rel: str, position: int | None = None) -> Parsing:
        """The page at `url`: the first of those fetched ahead if it is that one, else fetched now (the guesses
        ahead were wrong: dropped)."""
        if ahead and ahead[0].url == url:
            return ahead.popleft()
        self._drop(ahead)
        return self._start(url, rel, position)

    def _start(self, url: str, rel: str, position: int | None = None) -> Parsing:
        """Download and pre-scan `url` and start its parse: in a worker when more pages follow along `rel`
        (walking back to `position`: unless the page seems to hold it). Errors are kept in the Parsing: a page
        fetched ahead may turn out not to be needed."""
        item = Parsing(url)
        try:
            self.requests += 1
            got = self.client.download(url)
            if got is None:
                raise FeedError(f"GET {url}: 304 Not Modified to a request without a validator")
            body, etag, item.final_url = got
            item.scan = prescan(item.final_url, body)
            item.future = self.parser.submit(item.final_url, body, etag, item.scan, self._leads_on(item, rel, position),
                                             position or 0)
        except FeedError as exc:
            item.error = exc
        return item

    def _fill(self, ahead: deque[Parsing], current: Parsing, rel: str, most: int, position: int | None = None) -> None:
        """Fetch ahead along the pre-scans' `rel` links from the last page in flight, up to `most` (and AHEAD)."""
        last = ahead[-1] if ahead else current
        while len(ahead) < min(AHEAD, most) and self._leads_on(last, rel, position):
            link = last.scan.links[rel] if last.scan else ""
            origin = self.client.origin
            if (link in self.seen or link in (current.url, current.final_url) or any(link == i.url for i in ahead)
                    or (origin is not None and not origin.holds(link))):
                return
            last = self._start(link, rel, position)
            ahead.append(last)

    @staticmethod
    def _leads_on(item: Parsing, rel: str, position: int | None) -> bool:
        """Whether the walk will go on from `item` along `rel`, as far as its pre-scan tells."""
        scan = item.scan
        return (item.error is None and scan is not None and bool(scan.links.get(rel))
                and (position is None or not scan.holds(position)))

    def _take(self, item: Parsing) -> Page:
        """The page of `item`, reached by the walk: marked seen, parsed (FeedError if it could not be had)."""
        if item.final_url:
            self.seen.add(item.final_url)
        page = item.page()
        self.saw(page)
        return page

    def _drop(self, ahead: deque[Parsing]) -> None:
        while ahead:
            ahead.popleft().cancel()

    @staticmethod
    def _overtaken(url: str, page: Page, after: int | None) -> bool:
        """Whether `page`, got for next-archive `url` after a page ending at `after`, is the current page the
        publisher redirected `url` to and which moved on before the redirect was followed: `url` filled up
        meanwhile, and the current page is now a later one (empty, or beginning after `after + 1`)."""
        return after is not None and page.url != url and (page.first is None or page.first > after + 1)

    def _fetch_again(self, url: str, redirected_to: Page) -> Page:
        """`url` read again, an archive now, rather than skip its entries (the current page may be read again)."""
        self.seen.discard(redirected_to.url)
        return self._fetch_unconditionally(url)

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

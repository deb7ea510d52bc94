"""Fetching the pages of an atomshop Atom feed: one origin, bounded size, a true deadline per page.

Every request stays on the origin of the feed URL the client was made for: links and redirects elsewhere are a
FeedError (ForeignOrigin), never a request. Redirects are followed by hand, a hop at a time, so each is checked.
Error texts name the URL and a short cause (causes.py), never the connection library's internals (which would
tell whoever controls a link what is listening where).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urljoin

import requests
from requests.utils import get_netrc_auth

from common.feeds.follow.answers import retry_after, same_tag
from common.feeds.follow.causes import cause
from common.feeds.follow.deadline import Deadline, DeadlineAdapter
from common.feeds.follow.errors import FeedError, PageGone
from common.feeds.follow.origin import ForeignOrigin, Origin
from common.feeds.follow.page import FeedEntry, Page, parse_feed, parse_page

__all__ = ["FeedClient", "FeedEntry", "FeedError", "ForeignOrigin", "Page", "PageGone", "parse_feed", "parse_page"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# A page as downloaded: its bytes, its ETag, its URL after redirects.
Download = tuple[bytes, str | None, str]

MAX_PAGE_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FeedClient:
    """One requests.Session with timeouts, a size cap, a wall-clock deadline per page, and one origin."""

    def __init__(self, connect_timeout: float = 3.05, read_timeout: float = 10.0, max_bytes: int = MAX_PAGE_BYTES,
                 deadline: float = 30.0, session: requests.Session | None = None, origin: str | None = None,
                 token: str | None = None) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.origin = Origin(origin) if origin else None  # the follower sets it from its feed URL
        self.session = session or requests.Session()
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, DeadlineAdapter())
        self.session.headers.update({"Accept": "application/atom+xml", "User-Agent": "atomshop-follower/1"})
        if token:  # the publisher's FEED_TOKEN; sent only on the feed's origin, where every request stays
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._deadlines: set[Deadline] = set()  # the exchanges in progress, which `close` cuts short
        self.closed = False
        # Whether the last long poll (a fetch with `wait`) was held by the feed: None when none was asked or
        # its answer does not tell (see download).
        self.wait_applied: bool | None = None
        self._long_polls: set[Deadline] = set()  # long polls held now, which cut_long_polls ends
        self._cut: set[Deadline] = set()
        self.cuts = 0  # long polls ended by cut_long_polls: their None is no answer of the feed
        self.long_polls = 0  # long polls sent (with Prefer: wait)
        self._environment_read = False

    def _read_environment(self, origin: Origin) -> None:
        """Take proxies, CA bundle and .netrc credentials from the environment once, for the one origin every
        request goes to: requests otherwise reads them again on every request (~0.5 ms each, most of it
        scanning os.environ for proxy variables)."""
        session = self.session
        settings = session.merge_environment_settings(origin.feed_url, {}, None, None, None)
        session.proxies, session.verify, session.cert = settings["proxies"], settings["verify"], settings["cert"]
        session.auth = session.auth or get_netrc_auth(origin.feed_url)  # as requests would, per request
        session.trust_env = False
        self._environment_read = True

    def cut_long_polls(self) -> None:
        """End the long polls held now as if the feed had answered 304 (someone wants a pass at once)."""
        for deadline in list(self._long_polls):
            self._cut.add(deadline)
            deadline.expire()

    def close(self) -> None:
        """Cut every exchange in progress short and refuse new ones (a stopping process)."""
        self.closed = True
        for deadline in list(self._deadlines):
            deadline.expire()

    def fetch(self, url: str, etag: str | None = None, wait: float = 0, handled: int = 0,
              cuttable: bool = True) -> Page | None:
        """GET and parse a page; None when `etag` still matches (304). See `download` for `wait` and `cuttable`,
        `parse_page` for `handled`."""
        got = self.download(url, etag, wait, cuttable)
        return None if got is None else parse_page(got[2], got[0], got[1], handled=handled)

    def download(self, url: str, etag: str | None = None,
                 wait: float = 0, cuttable: bool = True) -> Download | None:
        """GET a page: (bytes, ETag, final URL after redirects), checked for status, size and time; None on 304.

        With `wait` and `etag`, a long poll: `Prefer: wait=N` (RFC 7240) asks the feed to hold the request until
        the page no longer matches `etag` (timeouts and deadline grow by N); `wait_applied` then says whether the
        feed did (Preference-Applied). `cuttable=False`: `cut_long_polls` leaves it be, for a long poll whose 304
        is an answer the caller relies on, not merely "nothing new yet".
        """
        # no-cache: any cache on the way must revalidate with the publisher.
        headers = {"Cache-Control": "no-cache"}
        if etag:
            headers["If-None-Match"] = etag
            if wait > 0:
                headers["Prefer"] = f"wait={int(wait)}"
                self.long_polls += 1
                return self._get(url, headers, self._long_poll, int(wait), cuttable)
        return self._get(url, headers, self._page)

    def _long_poll(self, url: str, resp: requests.Response, started: float) -> Download | None:
        # Held: Preference-Applied says so. A 304 without it: the page still matched, yet the feed answered at
        # once, so it ignores Prefer. A 200 without it: the page had changed, which says nothing either way,
        # unless it carries the very ETag sent: then the feed ignores If-None-Match, and so cannot hold anything.
        held = "wait" in resp.headers.get("Preference-Applied", "").lower()
        ignored = resp.status_code == 304 or (resp.status_code == 200 and same_tag(
            resp.headers.get("ETag"), resp.request.headers.get("If-None-Match")))
        self.wait_applied = True if held else (False if ignored else None)
        return self._page(url, resp, started)

    def fetch_document(self, url: str) -> str | None:
        """The JSON document at an entry's alternate link (dead-letter retries): None if it cannot be had;
        ForeignOrigin when the link leads off the feed's origin."""
        try:
            return self._get(url, {"Accept": "application/json", "Cache-Control": "no-cache"}, self._document)
        except ForeignOrigin:
            raise
        except FeedError as exc:
            log.info("cannot re-read %s for a retry: %s", url, exc)
            return None

    def _get(self, url: str, headers: dict[str, str], take: Callable[[str, requests.Response, float], T],
             wait: int = 0, cuttable: bool = True) -> T | None:
        """GET `url` following redirects on the origin, within one deadline (plus a long poll's `wait`);
        `take(url, response, started)` reads it. None: a held long poll cut short (`cut_long_polls`)."""
        if self.closed:
            raise FeedError(f"GET {url}: not sent, the process is stopping")
        if not self._environment_read and self.origin is not None and self.session.trust_env:
            self._read_environment(self.origin)
        timeout = (self.timeout[0], self.timeout[1] + wait)
        with Deadline(self.deadline + wait, self._deadlines) as deadline:
            started = time.monotonic() + wait  # the body's own deadline runs from the end of the wait
            if wait and cuttable:
                self._long_polls.add(deadline)
            try:
                for _hop in range(MAX_REDIRECTS + 1):
                    self._check(url, "link")
                    with self.session.get(url, headers=headers, timeout=timeout, stream=True,
                                          allow_redirects=False) as resp:
                        if resp.status_code in _REDIRECTS and resp.headers.get("Location"):
                            url = urljoin(url, resp.headers["Location"])
                            self._check(url, "redirect")
                            continue
                        return take(url, resp, started)
                raise FeedError(f"GET {url}: more than {MAX_REDIRECTS} redirects")
            except requests.RequestException as exc:
                if deadline in self._cut and not self.closed:
                    self.cuts += 1
                    return None  # cut short while held: the page had not changed until then
                if deadline.expired:
                    raise FeedError(f"GET {url}: not received within {self.deadline:g}s") from None
                raise FeedError(f"GET {url}: {cause(exc)}") from None
            finally:
                self._long_polls.discard(deadline)
                self._cut.discard(deadline)

    def _check(self, url: str, what: str) -> None:
        if self.origin is not None:
            self.origin.check(url, what)
        elif not url.lower().startswith(("http://", "https://")):
            raise FeedError(f"refusing to fetch {url[:200]!r}: only http and https links are followed")

    def _page(self, url: str, resp: requests.Response, started: float) -> Download | None:
        if resp.status_code == 304:
            return None
        if resp.status_code in (404, 410):
            raise PageGone(f"GET {url}: HTTP {resp.status_code} {resp.reason}")
        if resp.status_code != 200:
            raise FeedError(f"GET {url}: HTTP {resp.status_code} {resp.reason}", retry_after=retry_after(resp))
        return self._read_body(url, resp, started), resp.headers.get("ETag"), url

    def _document(self, url: str, resp: requests.Response, started: float) -> str:
        if resp.status_code != 200 or "json" not in resp.headers.get("Content-Type", ""):
            raise FeedError(f"GET {url}: HTTP {resp.status_code}, {resp.headers.get('Content-Type')}")
        try:
            return self._read_body(url, resp, started).decode("utf-8")
        except UnicodeDecodeError:
            raise FeedError(f"GET {url}: the document is not UTF-8") from None

    def _read_body(self, url: str, resp: requests.Response, started: float) -> bytes:
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FeedError(f"GET {url}: page of {declared} bytes exceeds the {self.max_bytes}-byte limit")
        body = bytearray()
        for chunk in resp.iter_content(64 * 1024):
            body += chunk
            if len(body) > self.max_bytes:
                raise FeedError(f"GET {url}: page exceeds the {self.max_bytes}-byte limit")
            if time.monotonic() - started > self.deadline:  # the Deadline's timer ends a stalled read
                raise FeedError(f"GET {url}: not received within {self.deadline:g}s")
        if time.monotonic() - started >= self.deadline:  # the timer shut the socket: what came is cut short
            raise FeedError(f"GET {url}: not received within {self.deadline:g}s")
        return bytes(body)


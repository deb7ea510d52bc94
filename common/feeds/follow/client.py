"""Fetching and parsing one page of an atomshop Atom feed, defensively: a bad page raises FeedError."""
from __future__ import annotations

import html
import io
import json
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import feedparser
import feedparser.api
import requests

log = logging.getLogger(__name__)

ATOMSHOP_NS = "tag:atomshop.example,2026:ns/feed"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
MAX_PAGE_BYTES = 10 * 1024 * 1024
# No feed of ours declares a DTD; refusing any before parsing rules out XXE and entity expansion bombs.
_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class FeedError(Exception):
    """The feed could not be read (network, HTTP status, size, XML, missing links); nothing was advanced."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One notification: what a handler receives."""

    position: int
    id: str
    event_type: str
    content: str
    link: str | None = None
    updated: str | None = None

    def json(self):
        """The content parsed as JSON (ValueError if it is not JSON)."""
        return json.loads(self.content)


@dataclass(frozen=True, slots=True)
class Page:
    """One feed page: its links and its entries sorted by position, each position once."""

    url: str
    entries: tuple[FeedEntry, ...]
    prev: str | None
    next: str | None
    is_archive: bool
    etag: str | None = None

    @property
    def first(self) -> int | None:
        return self.entries[0].position if self.entries else None

    @property
    def last(self) -> int | None:
        return self.entries[-1].position if self.entries else None


class FeedClient:
    """One requests.Session with timeouts, a response size cap and an overall deadline per page."""

    def __init__(self, connect_timeout: float = 3.05, read_timeout: float = 10.0, max_bytes: int = MAX_PAGE_BYTES,
                 deadline: float = 30.0, session: requests.Session | None = None, token: str | None = None):
        self.timeout = (connect_timeout, read_timeout)
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/atom+xml", "User-Agent": "atomshop-follower/1"})
        if token:  # the publisher's FEED_TOKEN; requests drops it on a redirect to another host
            self.session.headers["Authorization"] = f"Bearer {token}"
        # An archive links the next page by its final URL; while that page is still being filled the
        # publisher redirects it to /feed, so redirects are followed (a few; a loop is a FeedError).
        self.session.max_redirects = 5

    def fetch(self, url: str, etag: str | None = None) -> Page | None:
        """GET and parse a page; None when `etag` still matches (304)."""
        got = self.download(url, etag)
        return None if got is None else parse_page(got[2], got[0], got[1])

    def download(self, url: str, etag: str | None = None) -> tuple[bytes, str | None, str] | None:
        """GET a page: (bytes, ETag, final URL after redirects), checked for status, size and time; None on 304."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise FeedError(f"refusing to fetch {url!r}: only http and https feed links are followed")
        # no-cache: any cache on the way must revalidate with the order service.
        headers = {"Cache-Control": "no-cache"}
        if etag:
            headers["If-None-Match"] = etag
        try:
            with self.session.get(url, headers=headers, timeout=self.timeout, stream=True) as resp:
                if resp.status_code == 304:
                    return None
                if resp.status_code != 200:
                    raise FeedError(f"GET {url}: HTTP {resp.status_code} {resp.reason}")
                body = self._read_body(url, resp)
                page_etag = resp.headers.get("ETag")
                final_url = resp.url  # the publisher redirects a page still being filled to /feed
        except requests.Timeout as exc:
            raise FeedError(f"GET {url}: timed out ({exc})") from exc
        except requests.ConnectionError as exc:
            raise FeedError(f"GET {url}: cannot connect ({exc})") from exc
        except requests.RequestException as exc:  # e.g. a body cut short of its Content-Length
            raise FeedError(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        return body, page_etag, final_url

    def fetch_document(self, url: str) -> str | None:
        """The JSON document at an entry's alternate link, or None if it cannot be had (for dead-letter retries)."""
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        try:
            with self.session.get(url, headers={"Accept": "application/json", "Cache-Control": "no-cache"},
                                  timeout=self.timeout, stream=True) as resp:
                if resp.status_code != 200 or "json" not in resp.headers.get("Content-Type", ""):
                    return None
                return self._read_body(url, resp).decode("utf-8")
        except (requests.RequestException, FeedError, UnicodeDecodeError) as exc:
            log.info("cannot re-read %s for a retry: %s", url, exc)
            return None

    def _read_body(self, url: str, resp: requests.Response) -> bytes:
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FeedError(f"GET {url}: page of {declared} bytes exceeds the {self.max_bytes}-byte limit")
        stop_at = time.monotonic() + self.deadline
        body = bytearray()
        for chunk in resp.iter_content(64 * 1024):
            body += chunk
            if len(body) > self.max_bytes:
                raise FeedError(f"GET {url}: page exceeds the {self.max_bytes}-byte limit")
            if time.monotonic() > stop_at:  # a server dripping bytes never trips the read timeout
                raise FeedError(f"GET {url}: page not received within {self.deadline}s")
        return bytes(body)


_HEAD_END = re.compile(rb"<(?:\w+:)?entry[\s>]")
_LINK = re.compile(rb"<(?:\w+:)?link\b[^>]*>")
_ATTR = re.compile(rb"""\b(rel|href)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def sniff_prev_archive(body: bytes) -> str | None:
    """A quick guess at the page's prev-archive link from its head, to start fetching it early.

    Only a guess: the follower uses what it fetched only if the real parse agrees.
    """
    head_end = _HEAD_END.search(body)
    for tag in _LINK.finditer(body, 0, head_end.start() if head_end else len(body)):
        attrs = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(tag[0])}
        if attrs.get(b"rel") == b"prev-archive" and attrs.get(b"href"):
            try:
                return html.unescape(attrs[b"href"].decode("utf-8"))
            except UnicodeDecodeError:
                return None
    return None


# feedparser asks xml.sax for the libxml2 driver first, and a failed import is retried on every parse (~15% of
# a page's parse where the driver is not installed, as here); expat is what it falls back to anyway.
feedparser.api.PREFERRED_XML_PARSERS = []


def parse_feed(body: bytes):
    """feedparser over bytes, never a URL (the same call the benchmark measures as the ceiling)."""
    return feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)


def parse_page(url: str, body: bytes, etag: str | None = None) -> Page:
    """Check and parse a page's bytes; FeedError says what is wrong with it."""
    if _DTD.search(body):
        raise FeedError(f"{url}: the page declares a DTD or entities, which is refused (XXE / entity expansion)")
    try:
        body.decode("utf-8")  # also rules out UTF-16, which would hide a DOCTYPE from the check above
    except UnicodeDecodeError as exc:
        raise FeedError(f"{url}: the page is not UTF-8 ({exc})") from None
    if not body.strip():
        raise FeedError(f"{url}: the page is empty")
    try:
        parsed = parse_feed(body)
    except Exception as exc:  # whatever hostile bytes make feedparser do, it is the page's fault
        raise FeedError(f"{url}: the feed cannot be parsed ({type(exc).__name__}: {exc})") from exc
    if parsed.get("bozo"):
        raise FeedError(f"{url}: ill-formed feed XML ({parsed.get('bozo_exception')})")
    if parsed.get("version") != "atom10":
        raise FeedError(f"{url}: not an Atom 1.0 feed")
    prefixes = {uri: prefix for prefix, uri in parsed.namespaces.items()}
    links = {}
    for link in parsed.feed.get("links", ()):
        links.setdefault(link.get("rel"), link.get("href"))
    history = prefixes.get(HISTORY_NS)
    is_archive = bool(history and f"{history}_archive" in parsed.feed) or "next-archive" in links
    missing = [rel for rel in ("self", *(("next-archive", "current") if is_archive else ())) if not links.get(rel)]
    if missing:
        raise FeedError(f"{url}: page lacks the link(s) {', '.join(missing)}")
    return Page(url, _entries(url, parsed, prefixes.get(ATOMSHOP_NS)), links.get("prev-archive"),
                links.get("next-archive"), is_archive, etag)


def _entries(url: str, parsed, prefix: str | None) -> tuple[FeedEntry, ...]:
    key = f"{prefix}_position" if prefix else None
    by_position: dict[int, FeedEntry] = {}
    for raw in parsed.entries:
        text = raw.get(key, "") if key else ""
        if not text.strip().isdigit() or int(text) < 1:
            raise FeedError(f"{url}: entry {raw.get('id')!r} has no valid atomshop:position ({text!r})")
        position = int(text)
        if position in by_position:  # a duplicated entry is handled once
            continue
        tags = raw.get("tags") or ()
        content = raw.get("content") or ()
        link = next((lk.get("href") for lk in raw.get("links", ()) if lk.get("rel") == "alternate"), None)
        by_position[position] = FeedEntry(position, raw.get("id", ""), (tags[0].get("term") or "") if tags else "",
                                          content[0].get("value", "") if content else "", link, raw.get("updated"))
    return tuple(by_position[p] for p in sorted(by_position))

"""One page of an atomshop Atom feed, parsed defensively: a bad page raises FeedError saying what is wrong."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import feedparser
import feedparser.api
from feedparser import FeedParserDict
from lxml import etree

from common.feeds.follow.errors import FeedError
from common.feeds.follow.prescan import ATOMSHOP_NS, Scan, prescan

HISTORY_NS = "http://purl.org/syndication/history/1.0"


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One notification: what a handler receives."""

    position: int
    id: str
    event_type: str
    content: str
    link: str | None = None
    updated: str | None = None

    def json(self) -> Any:
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

    def entry_at(self, position: int) -> FeedEntry | None:
        """The entry at `position` on this page, if it holds it."""
        return next((e for e in self.entries if e.position == position), None)


# Already checked by the pre-scan (no DTD, no entities, bounded size); this parser would not resolve them anyway.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_ENTRY = "{http://www.w3.org/2005/Atom}entry"
_POSITION = f"{{{ATOMSHOP_NS}}}position"

# feedparser asks xml.sax for the libxml2 driver first, and a failed import is retried on every parse (~15% of
# a page's parse where the driver is not installed, as here); expat is what it falls back to anyway.
feedparser.api.PREFERRED_XML_PARSERS = []


def parse_feed(body: bytes) -> FeedParserDict:
    """feedparser over bytes, never a URL (the same call the benchmark measures as the ceiling)."""
    return feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)


def parse_page(url: str, body: bytes, etag: str | None = None, scan: Scan | None = None,
               handled: int = 0) -> Page:
    """Check and parse a page's bytes (pre-scanned unless `scan` is given); FeedError says what is wrong.

    `handled`: the follower's position. When the page holds the entry at that position, the entries before it are
    left out (feedparser costs about a millisecond per entry, and a long-polling follower reads the current page
    again for every new entry); everything a follower looks at — the entry at its position, those after it, the
    page's links — is the same either way.
    """
    scan = scan or prescan(url, body)
    if handled > 1:
        body = _from_position(body, handled)
    try:
        parsed = parse_feed(body)
    except Exception as exc:  # whatever hostile bytes make feedparser do, it is the page's fault
        raise FeedError(f"{url}: the feed cannot be parsed ({type(exc).__name__})") from exc
    if parsed.get("bozo"):
        raise FeedError(f"{url}: ill-formed feed XML ({parsed.get('bozo_exception')})")
    if parsed.get("version") != "atom10":
        raise FeedError(f"{url}: not an Atom 1.0 feed")
    prefixes = {uri: prefix for prefix, uri in parsed.namespaces.items()}
    links: dict[str | None, str | None] = {}
    for link in parsed.feed.get("links", ()):
        links.setdefault(link.get("rel"), link.get("href"))
    history = prefixes.get(HISTORY_NS)
    is_archive = bool(history and f"{history}_archive" in parsed.feed) or "next-archive" in links
    missing = [rel for rel in ("self", *(("next-archive", "current") if is_archive else ())) if not links.get(rel)]
    if missing:
        raise FeedError(f"{url}: page lacks the link(s) {', '.join(missing)}")
    return Page(url, _entries(url, parsed, prefixes.get(ATOMSHOP_NS)), links.get("prev-archive"),
                links.get("next-archive"), is_archive, etag)


def _from_position(body: bytes, position: int) -> bytes:
    """The page without its entries before `position` if it holds an entry at `position`, else as it is."""
    try:
        feed = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError:
        return body  # feedparser says what is wrong with it
    before = []
    held = False
    for entry in feed.iterfind(_ENTRY):
        found = entry.findtext(_POSITION)
        number = int(found) if found and found.strip().isdigit() else None
        held = held or number == position
        if number is not None and number < position:
            before.append(entry)
    if not held or not before:
        return body
    for entry in before:
        feed.remove(entry)
    trimmed: bytes = etree.tostring(feed, encoding="UTF-8", xml_declaration=True)
    return trimmed


def _entries(url: str, parsed: FeedParserDict, prefix: str | None) -> tuple[FeedEntry, ...]:
    key = f"{prefix}_position" if prefix else None
    by_position: dict[int, FeedEntry] = {}
    for raw in parsed.entries:
        text = raw.get(key, "") if key else ""
        if not text.strip().isdigit() or int(text) < 1:
            raise FeedError(f"{url}: entry {raw.get('id')!r} has no valid atomshop:position ({text[:40]!r})")
        position = int(text)
        tags = raw.get("tags") or ()
        content = raw.get("content") or ()
        link = next((lk.get("href") for lk in raw.get("links", ()) if lk.get("rel") == "alternate"), None)
        entry = FeedEntry(position, raw.get("id", ""), (tags[0].get("term") or "") if tags else "",
                          content[0].get("value", "") if content else "", link, raw.get("updated"))
        first = by_position.setdefault(position, entry)
        if first != entry:  # a copy of an entry is handled once; another entry at its position is a broken feed
            raise FeedError(f"{url}: two different entries at position {position} ({first.id!r} and {entry.id!r})")
    return tuple(by_position[p] for p in sorted(by_position))

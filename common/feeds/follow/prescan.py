"""A cheap, linear look at a page's bytes before feedparser parses it: refuses what would make parsing slow or
unsafe, and reads the feed's own links (the real XML ones, never text inside a comment).

feedparser's strict SAX parser costs about 20 µs per element and grows quadratically with the attributes of one
element, so a page of 10 MiB of attributes would hold a follower for minutes. lxml (libxml2, in C) counts them in
well under a second, stopping at the first limit passed; a page within the limits parses in about a second at
most. An atomshop page of 20 entries has about 200 elements and 100 attributes.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from lxml import etree

from common.feeds.follow.errors import FeedError

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOMSHOP_NS = "tag:atomshop.example,2026:ns/feed"
MAX_ELEMENTS = 50_000
MAX_ATTRIBUTES = 50_000
MAX_ATTRIBUTES_PER_ELEMENT = 32
# No feed of ours declares a DTD; refusing any before parsing rules out XXE and entity expansion bombs.
_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_LINK = f"{{{ATOM_NS}}}link"
_POSITIONS = f"{{{ATOM_NS}}}entry/{{{ATOMSHOP_NS}}}position"
_LONG_SEGMENT = re.compile(rb"<([^<]{4096,})")
# A start tag with too many attributes, matched at the start of a "<"-segment ("<" never occurs inside a tag).
_CROWDED_TAG = re.compile(rb"""[^\s<>/!?]+(?:\s+[^\s=<>/]+\s*=\s*(?:"[^"]*"|'[^']*')){%d}"""
                          % (MAX_ATTRIBUTES_PER_ELEMENT + 1))


@dataclass(frozen=True)
class Scan:
    """What the pre-scan learnt: the feed-level links by rel (the first of each), the counts, and the smallest
    entry position (a guess for walking back: only the full parse is trusted)."""

    links: dict[str, str]
    elements: int
    attributes: int
    first: int | None = None

    def holds(self, position: int) -> bool:
        """Whether the page seems to hold `position` (for 0: the first entry), as history.holds asks of a Page."""
        return self.first is not None and self.first <= max(position, 1)


def prescan(url: str, body: bytes, max_elements: int = MAX_ELEMENTS, max_attributes: int = MAX_ATTRIBUTES) -> Scan:
    """Check a page's bytes before the full parse; FeedError says what is wrong with it."""
    if _DTD.search(body):
        raise FeedError(f"{url}: the page declares a DTD or entities, which is refused (XXE / entity expansion)")
    try:
        body.decode("utf-8")  # also rules out UTF-16, which would hide a DOCTYPE from the check above
    except UnicodeDecodeError as exc:
        raise FeedError(f"{url}: the page is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not body.strip():
        raise FeedError(f"{url}: the page is empty")
    if _crowded(body):  # libxml2 would take a second or two over 10 MiB of one element's attributes
        raise FeedError(f"{url}: an element with more than {MAX_ATTRIBUTES_PER_ELEMENT} attributes, which is refused")
    links: dict[str, str] = {}
    elements = attributes = 0
    # Start events only (each costs a Python call); the tree is at most MAX_ELEMENTS elements.
    events = etree.iterparse(io.BytesIO(body), events=("start",), resolve_entities=False, no_network=True,
                             load_dtd=False, huge_tree=False)
    try:
        for _event, element in events:
            elements += 1
            count = len(element.attrib)
            attributes += count
            if count > MAX_ATTRIBUTES_PER_ELEMENT:
                raise FeedError(f"{url}: an element with {count} attributes (at most "
                                f"{MAX_ATTRIBUTES_PER_ELEMENT} are accepted)")
            if elements > max_elements or attributes > max_attributes:
                raise FeedError(f"{url}: the page has more than {max_elements} elements or {max_attributes} "
                                "attributes, which is refused")
            if element.tag == _LINK:
                parent = element.getparent()
                if parent is not None and parent.getparent() is None:  # the feed's own link, not an entry's
                    href = element.get("href")
                    if href:
                        links.setdefault(element.get("rel", "alternate"), href)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"{url}: ill-formed feed XML ({_first_line(str(exc))})") from None
    # The tree is built by now: the entries' positions are a search in C.
    positions = [int(text) for element in events.root.iterfind(_POSITIONS)
                 if (text := (element.text or "").strip()).isdigit()]
    return Scan(links, elements, attributes, min(positions, default=None))


def _crowded(body: bytes) -> bool:
    """Whether some long start tag has too many attributes (short ones cost lxml little, and it counts them):
    only "<"-segments over 4 KiB are looked at, a byte count first, the exact match only where it is high."""
    return any(m[1].count(b"=") > MAX_ATTRIBUTES_PER_ELEMENT and _CROWDED_TAG.match(m[1])
               for m in _LONG_SEGMENT.finditer(body))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "syntax error"

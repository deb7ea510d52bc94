"""Atom 1.0 rendering of one feed page (RFC 4287, paged per RFC 5005) with feedgen."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from common.feeds.publish.log import NotificationMixin

ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
ATOMSHOP_NS = "tag:atomshop.example,2026:ns/feed"

# Part of every page's entity tag: bump it whenever a change here alters the bytes of a page.
FORMAT_VERSION = 2  # 2: the feed links its page for people (FeedSpec.html_path)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)

# Pages are rendered with placeholders for the service's root URL and filled in per request (`fill`), so stored
# bytes serve every host name: ROOT where entries link to documents (request.url_root), LINK_ROOT where the page
# links to pages (url_for's external URLs, which keep an IDNA host in its xn-- form where url_root decodes it).
# In an attribute their quotes are written `&quot;`, a byte sequence element text never holds (it writes every `&`
# as `&amp;`): a placeholder cannot be confused with anything a document says.
ROOT = '"atomshop-root"/'
LINK_ROOT = '"atomshop-links"/'
_ROOT_BYTES = b"&quot;atomshop-root&quot;/"
_LINK_ROOT_BYTES = b"&quot;atomshop-links&quot;/"


@dataclass(frozen=True)
class FeedSpec:
    """What a feed is about: its identity, and how a stored document becomes an entry.

    Each callable gets the entry's event type and its document: one resource (an order) may have several entries
    (created, cancelled), each with its own atom:id.
    """

    feed_id: str
    title: str
    author: str
    entry_id: Callable[[str, Any], str]
    entry_title: Callable[[str, Any], str]
    entry_path: Callable[[str, Any], str]  # path of the document's own resource, relative to the service root
    html_path: str | None = None  # a page showing the feed to people (link rel="alternate" type="text/html")


@dataclass(frozen=True)
class PageLinks:
    """Absolute URLs a page links to (RFC 5005)."""

    self_url: str
    current_url: str
    prev_archive: str | None = None
    next_archive: str | None = None


def render_page(spec: FeedSpec, links: PageLinks, archive: bool, updated: datetime, rows: Sequence[NotificationMixin],
                root_url: str) -> bytes:
    """The Atom document of one page; `rows` are notifications, newest first; `root_url` ends with '/'."""
    fg = FeedGenerator()
    fg.id(spec.feed_id)
    fg.title(spec.title)
    fg.author({"name": spec.author})
    fg.updated(updated)
    fg.generator("atomshop")  # feedgen's default names its own version, which would change the bytes on upgrade
    fg.link(href=links.self_url, rel="self", type="application/atom+xml")
    fg.link(href=links.current_url, rel="current", type="application/atom+xml")
    if spec.html_path:
        fg.link(href=root_url + spec.html_path.lstrip("/"), rel="alternate", type="text/html")
    if links.prev_archive:
        fg.link(href=links.prev_archive, rel="prev-archive", type="application/atom+xml")
    if links.next_archive:
        fg.link(href=links.next_archive, rel="next-archive", type="application/atom+xml")
    entries = []
    for row in rows:
        document = json.loads(row.document)
        fe = fg.add_entry(order="append")
        fe.id(spec.entry_id(row.event_type, document))
        fe.title(spec.entry_title(row.event_type, document))
        fe.updated(row.created)
        fe.published(row.created)
        fe.category(term=row.event_type)
        fe.link(href=root_url + spec.entry_path(row.event_type, document).lstrip("/"), rel="alternate",
                type="application/json")
        fe.content(row.document, type="text")
        entries.append((fe, row.position))
    # feedgen writes the Atom namespace as a plain `xmlns` attribute on un-namespaced elements; reparsing
    # its output gives a namespace-aware tree to fix up and extend.
    feed = etree.fromstring(fg.atom_str(pretty=False), parser=_PARSER)
    _restore_entry_links(feed, [fe for fe, _ in entries])
    for element, (_, position) in zip(feed.iterfind(f"{{{ATOM_NS}}}entry"), entries, strict=True):
        etree.SubElement(element, f"{{{ATOMSHOP_NS}}}position").text = str(position)
    if archive:
        # RFC 5005 §4: an archive document carries fh:archive; placed before the entries.
        first_entry = feed.find(f"{{{ATOM_NS}}}entry")
        marker = etree.Element(f"{{{HISTORY_NS}}}archive")
        if first_entry is None:
            feed.append(marker)
        else:
            first_entry.addprevious(marker)
    etree.cleanup_namespaces(feed, top_nsmap={"fh": HISTORY_NS, "atomshop": ATOMSHOP_NS})
    etree.indent(feed, space="  ")
    page: bytes = etree.tostring(feed, encoding="UTF-8", xml_declaration=True)
    return page


def render_template(spec: FeedSpec, links: PageLinks, archive: bool, updated: datetime,
                    rows: Sequence[NotificationMixin]) -> bytes:
    """The page rendered for any root URL (`links` start with LINK_ROOT), to be completed by `fill`."""
    body = render_page(spec, links, archive, updated, rows, ROOT)
    page_links = 2 + bool(links.prev_archive) + bool(links.next_archive)
    # Only an attribute can hold a placeholder, so any extra one comes from an event type (a category term).
    root_links = len(rows) + bool(spec.html_path)  # each entry's document, and the page for people
    if body.count(_ROOT_BYTES) != root_links or body.count(_LINK_ROOT_BYTES) != page_links:
        raise ValueError(f"an event type on this page contains a root placeholder ({ROOT!r} or {LINK_ROOT!r})")
    return body


def fill(template: bytes, root_url: str, link_root: str) -> bytes:
    """A page rendered by `render_template`, for `root_url` and page links under `link_root`: byte for byte what
    render_page would have made with them."""
    return template.replace(_ROOT_BYTES, _attribute_bytes(root_url)).replace(_LINK_ROOT_BYTES,
                                                                              _attribute_bytes(link_root))


@lru_cache(maxsize=64)
def _attribute_bytes(value: str) -> bytes:
    """`value` as lxml writes it in an attribute (escapes and all), UTF-8."""
    element: bytes = etree.tostring(etree.Element("a", h=value), encoding="UTF-8")
    return element[len(b'<a h="'):-len(b'"/>')]


def _restore_entry_links(feed: etree._Element, feed_entries: list[FeedEntry]) -> None:
    """Put back the rel/type/… attributes feedgen 1.0.0's atom_entry drops from entry-level links."""
    for element, fe in zip(feed.iterfind(f"{{{ATOM_NS}}}entry"), feed_entries, strict=True):
        for link_element, link in zip(element.iterfind(f"{{{ATOM_NS}}}link"), fe.link() or [], strict=True):
            for name in ("rel", "type", "hreflang", "title", "length"):
                if link.get(name) and link_element.get(name) is None:
                    link_element.set(name, str(link[name]))

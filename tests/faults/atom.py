"""Builders of Atom pages and order documents in the order feed's wire format (see the feed format notes).

They write XML by hand on purpose: a hostile server must be able to emit what no feed library would.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from xml.sax.saxutils import escape

ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
ATOMSHOP_NS = "tag:atomshop.example,2026:ns/feed"
FEED_ID = "tag:atomshop.example,2026:feed/orders"
UPDATED = "2026-01-01T00:00:00Z"


def order_document(order_id: int, base_url: str = "http://127.0.0.1", customer_id: int = 1,
                   street: str = "1 Main Street", quantity: int = 2) -> dict:
    """A complete order document as GET /api/orders/<id> returns it."""
    price = Decimal("21.00")
    address = {"street": street, "zip": "12345", "city": "Springfield"}
    return {
        "id": order_id,
        "created": UPDATED,
        "customer": {"id": customer_id, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        "shipping_address": dict(address),
        "billing_address": dict(address),
        "lines": [{"item": {"id": 1, "name": "Widget", "price": str(price)}, "quantity": quantity}],
        "total": str(price * quantity),
    }


@dataclass
class Entry:
    """One feed entry; ``content`` overrides the JSON of the order document when given (raw, unescaped)."""

    position: int
    order_id: int
    event_type: str = "OrderCreated"
    content: str | None = None
    document: dict | None = None
    raw_content: bool = False  # put ``content`` into the XML without escaping (entity references)

    def xml(self, base_url: str) -> str:
        doc = self.document or order_document(self.order_id, base_url)
        text = self.content if self.content is not None else json.dumps(doc)
        body = text if self.raw_content else escape(text)
        return (
            "<entry>"
            f"<id>tag:atomshop.example,2026:order/{self.order_id}</id>"
            f"<title>Order {self.order_id}</title>"
            f"<updated>{UPDATED}</updated><published>{UPDATED}</published>"
            f'<category term="{escape(self.event_type)}"/>'
            f'<link rel="alternate" type="application/json" href="{base_url}/api/orders/{self.order_id}"/>'
            f'<content type="text">{body}</content>'
            f"<atomshop:position>{self.position}</atomshop:position>"
            "</entry>"
        )


@dataclass
class Page:
    """One feed page; links are paths made absolute against the server's base URL."""

    self_path: str
    entries: list[Entry] = field(default_factory=list)
    prev_archive: str | None = None
    next_archive: str | None = None
    current: str | None = "/feed"
    archive: bool = False
    doctype: str = ""  # e.g. an internal subset declaring entities

    def xml(self, base_url: str) -> str:
        links = [f'<link rel="self" href="{base_url}{self.self_path}"/>']
        if self.prev_archive:
            links.append(f'<link rel="prev-archive" href="{base_url}{self.prev_archive}"/>')
        if self.next_archive:
            links.append(f'<link rel="next-archive" href="{base_url}{self.next_archive}"/>')
        if self.current:
            links.append(f'<link rel="current" href="{base_url}{self.current}"/>')
        entries = sorted(self.entries, key=lambda e: -e.position)  # newest first, as the publisher does
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            + self.doctype
            + f'<feed xmlns="{ATOM_NS}" xmlns:fh="{HISTORY_NS}" xmlns:atomshop="{ATOMSHOP_NS}">'
            f"<id>{FEED_ID}</id><title>Orders</title><updated>{UPDATED}</updated>"
            "<author><name>atomshop</name></author>"
            + "".join(links)
            + ("<fh:archive/>" if self.archive else "")
            + "".join(e.xml(base_url) for e in entries)
            + "</feed>"
        )


def paged_feed(entries: list[Entry], size: int) -> dict[str, Page]:
    """Pages by path (``/feed``, ``/feed/pages/<k>``) laid out as the publisher lays them out."""
    last = max((e.position for e in entries), default=0)
    current = last // size + 1
    pages: dict[str, Page] = {}
    for k in range(1, current + 1):
        path = "/feed" if k == current else f"/feed/pages/{k}"
        nxt = None if k == current else ("/feed" if k + 1 == current else f"/feed/pages/{k + 1}")
        pages[path] = Page(
            self_path=path,
            entries=[e for e in entries if (k - 1) * size < e.position <= k * size],
            prev_archive=f"/feed/pages/{k - 1}" if k > 1 else None,
            next_archive=nxt,
            archive=k != current,
        )
    return pages

"""A hand-written atomshop order feed served through `responses`, in the agreed wire format (unit tests only)."""
from __future__ import annotations

import json
import re
import zlib
from xml.sax.saxutils import escape, quoteattr

import responses

BASE = "http://orders.test"
FEED_URL = BASE + "/feed"


def order_document(order_id: int, quantity: int = 2, price: str = "21.50", street: str = "1 Main Street") -> dict:
    total = f"{float(price) * quantity:.2f}"
    return {"id": order_id, "created": "2026-01-01T00:00:00Z",
            "customer": {"id": 1, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
            "shipping_address": {"street": street, "zip": "12345", "city": "Springfield"},
            "billing_address": {"street": "9 Bill Road", "zip": "54321", "city": "Shelbyville"},
            "lines": [{"item": {"id": 3, "name": "Widget", "price": price}, "quantity": quantity}],
            "total": total}


def entry_xml(position: int, order_id: int | None = None, event_type: str = "OrderCreated",
              content: str | None = None, prefix: str = "atomshop") -> str:
    order_id = order_id or position
    text = content if content is not None else json.dumps(order_document(order_id))
    return (f"<entry><id>tag:atomshop.example,2026:order/{order_id}</id><title>Order {order_id}</title>"
            f"<updated>2026-01-01T00:00:00Z</updated><published>2026-01-01T00:00:00Z</published>"
            f"<category term={quoteattr(event_type)}/>"
            f'<link rel="alternate" type="application/json" href="{BASE}/api/orders/{order_id}"/>'
            f'<content type="text">{escape(text)}</content>'
            f"<{prefix}:position>{position}</{prefix}:position></entry>")


def page_xml(self_url: str, entries: list[str], prev: str | None = None, next_: str | None = None,
             archive: bool = False, prefix: str = "atomshop") -> str:
    links = [f'<link rel="self" href="{self_url}"/>', f'<link rel="current" href="{FEED_URL}"/>']
    if prev:
        links.append(f'<link rel="prev-archive" href="{prev}"/>')
    if next_:
        links.append(f'<link rel="next-archive" href="{next_}"/>')
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:fh="http://purl.org/syndication/history/1.0" '
            f'xmlns:{prefix}="tag:atomshop.example,2026:ns/feed">'
            "<id>tag:atomshop.example,2026:feed/orders</id><title>Orders</title>"
            "<updated>2026-01-01T00:00:00Z</updated><author><name>atomshop</name></author>"
            + "".join(links) + ("<fh:archive/>" if archive else "")
            + "".join(reversed(entries)) + "</feed>")  # newest first, as the publisher writes them


class FakeFeed:
    """The order feed of `count` orders, `size` per page, with ETags and 304s, registered on a RequestsMock."""

    def __init__(self, rsps: responses.RequestsMock, size: int = 3, count: int = 0):
        self.size = size
        self.count = count
        self.overrides: dict = {}  # URL → body served instead (broken pages), or request → (status, headers, body)
        self.entry_overrides: dict[int, str] = {}  # position → entry XML
        self.requests: list[tuple[str, str | None]] = []  # (url, If-None-Match)
        rsps.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/feed(/pages/\d+)?$"), self._serve)

    def url(self, k: int) -> str:
        return FEED_URL if k == self.current else f"{BASE}/feed/pages/{k}"

    @property
    def current(self) -> int:
        return self.count // self.size + 1

    def page(self, k: int) -> str:
        first, last = (k - 1) * self.size + 1, min(k * self.size, self.count)
        entries = [self.entry_overrides.get(p) or entry_xml(p) for p in range(first, last + 1)]
        archive = k < self.current
        return page_xml(self.url(k), entries, prev=f"{BASE}/feed/pages/{k - 1}" if k > 1 else None,
                        next_=self.url(k + 1) if archive else None, archive=archive)

    def fetched(self, url: str) -> int:
        return sum(1 for u, _ in self.requests if u == url)

    def _serve(self, request):
        url = request.url
        self.requests.append((url, request.headers.get("If-None-Match")))
        if url in self.overrides:
            body = self.overrides[url]
            if callable(body):
                return body(request)
            return 200, {"Content-Type": "application/atom+xml"}, body
        k = self.current if url == FEED_URL else int(url.rsplit("/", 1)[1])
        if not 1 <= k <= self.current or (url != FEED_URL and k == self.current):
            return 404, {}, "not found"
        etag = f'"p{k}-{self.count if k == self.current else "a"}"'
        if self.entry_overrides:  # like the publisher's, the tag changes with what the page holds
            etag = etag[:-1] + f'-{zlib.crc32(self.page(k).encode()):08x}"'
        if request.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, ""
        return 200, {"Content-Type": "application/atom+xml; charset=utf-8", "ETag": etag}, self.page(k)


# ---- a consumer database for the follower's unit tests --------------------------------------------------------
from sqlalchemy import Integer, select  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column  # noqa: E402

from common.feeds.follow.client import FeedClient  # noqa: E402
from common.feeds.follow.follower import FeedFollower  # noqa: E402
from common.feeds.follow.tracking import tracking_models  # noqa: E402
from common.service.db import Database  # noqa: E402


class Base(DeclarativeBase):
    pass


class Effect(Base):
    """What the test handler stores: one row per order, like an invoice."""

    __tablename__ = "effects"
    order_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(Integer)


MODELS = tracking_models(Base)


class Recorder:
    """A handler that stores an Effect per order and remembers the positions it saw, in order."""

    def __init__(self, fail_on: set[int] | None = None):
        self.positions: list[int] = []
        self.fail_on = fail_on or set()

    def __call__(self, session, entry) -> None:
        doc = entry.json()
        if entry.position in self.fail_on:
            raise RuntimeError(f"handler refuses position {entry.position}")
        self.positions.append(entry.position)
        if session.get(Effect, doc["id"]) is None:
            session.add(Effect(order_id=doc["id"], position=entry.position))


def make_db(tmp_path, name: str = "consumer.db") -> Database:
    db = Database(f"sqlite:///{tmp_path / name}", Base)
    db.create_all()
    return db


def make_follower(db: Database, handler=None, consumer: str = "test", **kwargs) -> FeedFollower:
    kwargs.setdefault("event_types", {"OrderCreated"})
    kwargs.setdefault("client", FeedClient(connect_timeout=1, read_timeout=1))
    return FeedFollower(FEED_URL, consumer, db, handler or Recorder(), MODELS, **kwargs)


def effects(db: Database) -> list[int]:
    with db.read() as s:
        return list(s.scalars(select(Effect.order_id).order_by(Effect.order_id)))


def set_bookmark(db: Database, url: str) -> None:
    """Point the tracking record's bookmark at `url`, without an ETag: the next pass reads it unconditionally."""
    from sqlalchemy import update
    with db.write() as s:
        s.execute(update(MODELS.Tracking).values(bookmark=url, etag=None))

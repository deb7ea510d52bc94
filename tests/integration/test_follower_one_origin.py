"""One origin (issue 10, finding 2): links, redirects, speculative reads, bookmarks and dead-letter re-reads that
lead off the feed's origin are errors the follower reports, never requests it makes. A second listener (another
port: another origin) counts every request it gets, and must count 0. Also the dead-letter retry of finding 3."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from common.feeds import FeedFollower
from common.feeds.follow.client import FeedError
from common.feeds.follow.origin import ForeignOrigin
from common.service.db import Database
from invoicing_service.handlers import EVENT_TYPES, handle, handle_batch
from invoicing_service.models import Base, Invoice, tracking
from tests.faults.atom import Entry, Page, order_document, paged_feed
from tests.faults.hostile import HostileFeedServer, Raw


@pytest.fixture
def feed():
    with HostileFeedServer() as server:
        yield server


@pytest.fixture
def elsewhere():
    """Another origin: serves a well-formed feed and order documents, and counts whatever reaches it."""
    with HostileFeedServer() as server:
        server.set_routes({**paged_feed([Entry(p, 700 + p) for p in range(1, 8)], 3),
                           "/api/orders/777": Raw(json.dumps(order_document(777)).encode(),
                                                  content_type="application/json")})
        yield server


@pytest.fixture
def follower(feed, tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'invoicing.db'}", Base)
    db.create_all()
    return FeedFollower(feed.feed_url, "orders", db, handle, tracking, event_types=EVENT_TYPES,
                        batch_handler=handle_batch, max_attempts=1)


def total_hits(server: HostileFeedServer) -> int:
    return sum(server.hits.values())


def test_a_prev_archive_link_to_another_origin_is_refused_unrequested(feed, elsewhere, follower):
    feed.set_routes({"/feed": Page("/feed", [Entry(4, 4)], prev_archive=None)})
    feed.routes["/feed"].xml = lambda base: Page("/feed", [Entry(4, 4)]).xml(base).replace(
        '<link rel="current"', f'<link rel="prev-archive" href="{elsewhere.url}/feed/pages/1"/><link rel="current"')
    with pytest.raises(ForeignOrigin, match="off the feed's origin"):
        follower.poll()
    assert total_hits(elsewhere) == 0


def test_a_next_archive_link_to_another_origin_is_refused_unrequested(feed, elsewhere, follower):
    pages = paged_feed([Entry(p, p) for p in range(1, 4)], 3)  # one full archive page, empty current page
    archive = pages["/feed/pages/1"]
    archive.next_archive = None
    original = archive.xml
    archive.xml = lambda base: original(base).replace(
        '<link rel="current"', f'<link rel="next-archive" href="{elsewhere.url}/feed"/><link rel="current"')
    feed.set_routes({"/feed": Page("/feed", [], prev_archive="/feed/pages/1"), "/feed/pages/1": archive})
    follower.poll()
    assert follower.load().position == 3
    with follower.db.write() as s:  # caught up on the archive page, as when it filled after the last pass
        s.execute(update(tracking.Tracking).values(bookmark=feed.url + "/feed/pages/1", etag=None))
    with pytest.raises(FeedError, match="off the feed's origin"):
        follower.poll()
    assert total_hits(elsewhere) == 0


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_origin_is_refused_unrequested_and_never_bookmarked(feed, elsewhere, follower, status):
    feed.set_routes({"/feed": Raw(b"", status, headers={"Location": elsewhere.feed_url})})
    with pytest.raises(ForeignOrigin, match="refusing a redirect"):
        follower.poll()
    assert total_hits(elsewhere) == 0 and follower.load().bookmark is None


def test_a_redirect_on_the_origin_is_followed(feed, follower):
    feed.set_routes({**paged_feed([Entry(p, p) for p in range(1, 5)], 3), "/old-feed": Raw(
        b"", 302, headers={"Location": "/feed"})})
    follower.feed_url = feed.url + "/old-feed"
    assert follower.poll() == 4


def test_a_prev_archive_link_inside_a_comment_is_never_fetched(feed, elsewhere, follower):
    routes = paged_feed([Entry(p, p) for p in range(1, 8)], 3)
    current = routes["/feed"]
    original = current.xml
    # Before the real links, so a byte-level sniff would take it for the page's prev-archive.
    current.xml = lambda base: original(base).replace(
        "<author>", f'<!-- <link rel="prev-archive" href="{elsewhere.url}/feed/pages/2"/> --><author>', 1)
    feed.set_routes(routes)
    assert follower.poll() == 7
    assert total_hits(elsewhere) == 0


def test_a_bookmark_on_another_origin_is_discarded(feed, elsewhere, follower):
    feed.set_routes(paged_feed([Entry(p, p) for p in range(1, 5)], 3))
    follower.poll()
    with follower.db.write() as s:  # as left by an older configuration (ORDER_FEED_URL changed since)
        s.execute(update(tracking.Tracking).values(bookmark=elsewhere.feed_url, etag=None))
    assert follower.poll() == 0
    assert total_hits(elsewhere) == 0
    assert follower.load().bookmark.startswith(feed.url)


def dead_letter_pointing_at(feed, follower, link: str, order_id: int = 5) -> int:
    """A dead letter for order `order_id` whose alternate link is `link`."""
    bad = order_document(order_id)
    bad["total"] = "0.01"
    entry = Entry(1, order_id, content=json.dumps(bad))
    original = entry.xml
    entry.xml = lambda base: original(base).replace(f"{base}/api/orders/{order_id}", link)
    feed.set_routes({"/feed": Page("/feed", [entry])})
    follower.poll()
    [letter] = follower.dead_letters()
    return letter["id"]


def test_a_dead_letter_retry_never_reads_another_origin_and_keeps_the_letter(feed, elsewhere, follower):
    letter = dead_letter_pointing_at(feed, follower, f"{elsewhere.url}/api/orders/777")
    with pytest.raises(ForeignOrigin):
        follower.retry_dead_letter(letter)
    assert total_hits(elsewhere) == 0
    assert [d["id"] for d in follower.dead_letters()] == [letter]
    with follower.db.read() as s:
        assert list(s.scalars(select(Invoice.order_id))) == []


def test_a_forged_document_on_the_origin_with_another_id_keeps_the_dead_letter(feed, follower):
    letter = dead_letter_pointing_at(feed, follower, f"{feed.url}/api/orders/5")
    forged = order_document(777)
    forged["customer"]["first_name"] = "Injected"
    feed.routes["/api/orders/5"] = Raw(json.dumps(forged).encode(), content_type="application/json")
    with pytest.raises(ValueError, match="the document is order 777"):
        follower.retry_dead_letter(letter)
    assert [d["id"] for d in follower.dead_letters()] == [letter]
    with follower.db.read() as s:
        assert list(s.scalars(select(Invoice.order_id))) == []


def test_a_retried_document_whose_order_was_handled_with_other_content_keeps_the_dead_letter(feed, follower):
    letter = dead_letter_pointing_at(feed, follower, f"{feed.url}/api/orders/5")
    with follower.db.write() as s:  # order 5 already handled, from another entry, with other content
        handle(s, _entry_for(order_document(5, quantity=9), 9))
    feed.routes["/api/orders/5"] = Raw(json.dumps(order_document(5)).encode(), content_type="application/json")
    with pytest.raises(ValueError, match="already handled"):
        follower.retry_dead_letter(letter)
    assert [d["id"] for d in follower.dead_letters()] == [letter]


def test_a_corrected_document_on_the_origin_is_stored_and_the_letter_removed(feed, follower):
    letter = dead_letter_pointing_at(feed, follower, f"{feed.url}/api/orders/5")
    feed.routes["/api/orders/5"] = Raw(json.dumps(order_document(5)).encode(), content_type="application/json")
    follower.retry_dead_letter(letter)
    assert follower.dead_letters() == []
    with follower.db.read() as s:
        assert list(s.scalars(select(Invoice.order_id))) == [5]


def _entry_for(doc: dict, position: int):
    from common.feeds.follow.client import FeedEntry

    return FeedEntry(position, f"tag:atomshop.example,2026:order/{doc['id']}", "OrderCreated", json.dumps(doc),
                     f"http://127.0.0.1/api/orders/{doc['id']}", "2026-01-01T00:00:00Z")

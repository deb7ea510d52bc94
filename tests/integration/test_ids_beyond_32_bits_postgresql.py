"""Ids, feed positions, archive page numbers and counts beyond 2**31-1 on a real PostgreSQL, in the schema the
services' migrations build.

The documents take ids from 1 to 2**63-1 (MAX_ID) and feed positions have no bound, but PostgreSQL's INTEGER is 32
bits: stored there, a valid order 2**40 or position 2**31 was "integer out of range" and the consumer failed on a
document the contract says is valid. A feed of two billion entries is out of reach here, so positions and counts
start near the bound: an operator's reset-position, or a row the test writes, as a long-lived feed would have them.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from common.contracts import INVOICE_ISSUED, SHIPMENT_PREPARED
from common.feeds.follow.page import parse_page
from common.service.consumer import FOLLOWER_KEY
from invoicing_service.app import create_app as create_invoicing
from order_service import create_app as create_order_service
from order_service.models import ArchivePage, Customer, Item, Notification
from shipping_service.app import create_app as create_shipping
from tests.faults.hostile import HostileFeedServer, Raw
from tests.unit.follower_feed import BASE, FEED_URL, entry_xml, order_document, page_xml
from tests.unit.test_feed_http import order_body

INT4_MAX = 2**31 - 1  # the largest PostgreSQL INTEGER
BIG = 2**40  # a valid id (the contract takes up to 2**63-1) far beyond it
P = INT4_MAX + 4  # a position beyond it: the follower has handled the order feed up to here


def big_order(order_id: int = BIG) -> dict:
    """An order document whose order, customer and item ids are all beyond INTEGER."""
    document = order_document(order_id)
    document["customer"]["id"] = order_id + 1
    document["lines"][0]["item"]["id"] = order_id + 2
    return document


@pytest.fixture
def order_feed():
    """An order feed on a loopback server, read over real HTTP; each test sets its current page."""
    with HostileFeedServer() as server:
        yield server


def serve_order_feed(server: HostileFeedServer, *entries: str) -> None:
    """The order feed's current page with these entries, its links on the server's origin (earlier pages are
    never read: the first holds P)."""
    page = page_xml(FEED_URL, list(entries), prev=f"{BASE}/feed/pages/{P // 20}").replace(BASE, server.url)
    server.set_routes({"/feed": Raw(page.encode())})


@pytest.fixture(params=["invoicing", "shipping"])
def consumer(request, postgres, order_feed):
    """The invoicing or the shipping service on a PostgreSQL database its migrations built, following the order
    feed."""
    factory = create_invoicing if request.param == "invoicing" else create_shipping
    app = factory({"TESTING": True, "DATABASE_URL": postgres.create_database(), "ORDER_FEED_URL": order_feed.feed_url,
                   "POLL_INTERVAL": 0})
    app.kind = request.param
    yield app
    app.extensions["atomshop.db"].dispose()


def test_a_consumer_stores_and_publishes_an_order_whose_ids_and_position_are_beyond_32_bits(consumer, order_feed):
    client = consumer.test_client()
    consumer.extensions[FOLLOWER_KEY].reset_position(P)  # as `reset-position --to P` does
    serve_order_feed(order_feed, entry_xml(P, BIG - 1), entry_xml(P + 1, BIG, content=json.dumps(big_order())))
    polled = client.post("/poll")

    assert polled.status_code == 200, polled.get_json()
    assert polled.get_json()["processed"] == 1 and polled.get_json()["position"] == P + 1
    plural, event = ("invoices", INVOICE_ISSUED) if consumer.kind == "invoicing" else ("shipments", SHIPMENT_PREPARED)
    record = client.get(f"/api/{plural}/{BIG}").get_json()
    assert record["order_id"] == BIG and record["customer"]["id"] == BIG + 1
    assert [line["item"]["id"] for line in record["lines"]] == [BIG + 2]
    published = parse_page("http://localhost/feed", client.get("/feed").data)
    assert [(e.position, e.event_type, e.json()["order_id"]) for e in published.entries] == [(1, event, BIG)]


def test_a_follower_keeps_positions_and_counts_beyond_32_bits_on_its_tracking_record(consumer, order_feed):
    client = consumer.test_client()
    follower = consumer.extensions[FOLLOWER_KEY]
    db = consumer.extensions["atomshop.db"]
    follower.reset_position(P)
    with db.write() as s:  # as after two billion entries handled, skipped and dead-lettered
        s.execute(update(follower.models.Tracking).values(handled=INT4_MAX, skipped=INT4_MAX, dead_lettered=INT4_MAX))
    entries = (entry_xml(P, BIG - 1), entry_xml(P + 1, BIG, content=json.dumps(big_order())),
               entry_xml(P + 2, BIG + 10, event_type="OrderNoted"),  # not a type it follows: skipped
               entry_xml(P + 3, BIG + 20, content="not an order"))  # fails each time: retried, then dead-lettered

    serve_order_feed(order_feed, *entries)
    client.post("/poll")
    retrying = follower.stats()["retrying"]
    for _ in range(follower.applier.max_attempts - 1):
        client.post("/poll")

    assert retrying["position"] == P + 3
    stats = follower.stats()
    assert stats["position"] == P + 3 and stats["retrying"] is None
    assert (stats["handled"], stats["skipped"], stats["dead_lettered"]) == (INT4_MAX + 1,) * 3
    assert [letter["position"] for letter in follower.dead_letters()] == [P + 3]


@pytest.fixture
def order_service(postgres):
    """The order service on a PostgreSQL database its migrations built, a feed page holding one entry."""
    app = create_order_service({"TESTING": True, "DATABASE_URL": postgres.create_database(), "POLL_INTERVAL": 0,
                                "FEED_PAGE_SIZE": 1})
    yield app
    app.extensions["atomshop.db"].dispose()


def test_the_order_service_takes_ids_and_appends_positions_and_archive_pages_beyond_32_bits(order_service):
    client = order_service.test_client()
    db = order_service.extensions["atomshop.db"]
    with db.write() as s:  # a customer and an item from a catalogue numbered past INTEGER; orders numbered on from BIG
        s.add_all([Customer(id=BIG + 1, first_name="Ada", last_name="Big", email="ada@big.example"),
                   Item(id=BIG + 2, name="Big widget", price=Decimal("3.50"))])
        s.execute(text("SELECT setval(pg_get_serial_sequence('orders', 'id'), :id)"), {"id": BIG - 1})
        # the feed's newest entry at INT4_MAX, as after two billion orders
        s.add(Notification(position=INT4_MAX, event_type="OrderCreated", created=datetime.now(UTC),
                           document=json.dumps(order_document(BIG - 2))))
    body = order_body(customer_id=BIG + 1, lines=[{"item_id": BIG + 2, "quantity": 2}])

    placed = [client.post("/api/orders", json=body) for _ in range(2)]

    assert [p.status_code for p in placed] == [201, 201], [p.get_json() for p in placed]
    assert [p.get_json()["id"] for p in placed] == [BIG, BIG + 1]
    order = client.get(f"/api/orders/{BIG}").get_json()
    assert order["customer"]["id"] == BIG + 1 and [line["item"]["id"] for line in order["lines"]] == [BIG + 2]
    # One entry a page, so the page number is the position: the current page is the empty one after them.
    page = parse_page("http://localhost/feed", client.get("/feed").data)
    archived = []
    for _ in range(2):  # full pages: each rendered once and stored
        page = parse_page(page.prev, client.get(page.prev).data)
        archived += [(page.url.rsplit("/", 1)[1], e.position, e.json()["id"]) for e in page.entries]
    assert archived == [(str(INT4_MAX + 2), INT4_MAX + 2, BIG + 1), (str(INT4_MAX + 1), INT4_MAX + 1, BIG)]
    with db.read() as s:
        assert set(s.scalars(select(ArchivePage.number))) == {INT4_MAX + 1, INT4_MAX + 2}

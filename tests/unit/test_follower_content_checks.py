"""Content checks at the follower (issue 10, finding 5, and the already-handled order of finding 1): each rule of
the published order model, and the entry's own id, turns a received order into a dead letter with the reason."""
from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import select

from common.feeds import FeedFollower
from common.feeds.follow.client import FeedEntry
from common.service.db import Database
from common.service.storage import ConflictingOrder, read_order
from invoicing_service.handlers import EVENT_TYPES, handle, handle_batch
from invoicing_service.models import Base, Invoice, tracking
from tests.unit.follower_feed import FEED_URL, FakeFeed, entry_xml, order_document


def entry(doc: dict, position: int = 1, order_id: int | None = None, link_id: int | None = None) -> FeedEntry:
    order_id = doc["id"] if order_id is None else order_id
    link_id = order_id if link_id is None else link_id
    return FeedEntry(position, f"tag:atomshop.example,2026:order/{order_id}", "OrderCreated", json.dumps(doc),
                     f"http://orders.test/api/orders/{link_id}", "2026-01-01T00:00:00Z")


def broken(**changes) -> dict:
    doc = order_document(7)
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
    return doc


@pytest.mark.parametrize("doc, reason", [
    (broken(total="-43.00"), "total"),
    (broken(lines__0__quantity=10**12, total=f"{21.5 * 10**12:.2f}"), "quantity"),
    (broken(shipping_address__street="x" * 5_000_000), "street"),
    (broken(total="43.01"), "not the sum of the lines"),
    (broken(lines__0__item__price="-21.50", total="-43.00"), "price"),
], ids=["negative total", "absurd quantity", "5 MB street", "total not the sum", "negative price"])
def test_an_order_the_order_service_would_refuse_is_refused_with_the_reason(doc, reason):
    with pytest.raises(ValueError, match=reason):
        read_order(entry(doc))


@pytest.mark.parametrize("order_id, link_id, reason", [
    (8, 7, "its entry .* is about order 8"),
    (7, 8, "links to"),
])
def test_an_order_whose_id_disagrees_with_its_entry_is_refused(order_id, link_id, reason):
    with pytest.raises(ValueError, match=reason):
        read_order(entry(order_document(7), order_id=order_id, link_id=link_id))


def test_an_entry_id_that_names_no_order_is_refused():
    bad = FeedEntry(1, "urn:uuid:1", "OrderCreated", json.dumps(order_document(7)), None)
    with pytest.raises(ValueError, match="names no order"):
        read_order(bad)


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'invoicing.db'}", Base)
    database.create_all()
    return database


def test_an_order_id_handled_again_with_the_same_content_is_a_redelivery(db):
    with db.write() as s:
        handle(s, entry(order_document(7), position=3))
    with db.write() as s:
        handle(s, entry(order_document(7), position=3))  # no error, nothing new
    with db.read() as s:
        assert s.get(Invoice, 7).position == 3


def test_an_order_id_handled_again_with_different_content_is_refused_not_skipped(db):
    with db.write() as s:
        handle(s, entry(order_document(7), position=3))
    other = order_document(7, quantity=5)  # the recreated order service's order 7: someone else's
    with db.write() as s, pytest.raises(ConflictingOrder, match="order 7 was already handled .*position 3"):
        handle_batch(s, [entry(other, position=3)])
    with db.read() as s:
        assert str(s.get(Invoice, 7).total) == "43.00"  # the first content stays


def test_a_batch_holding_one_order_twice_with_different_content_is_refused(db):
    with db.write() as s, pytest.raises(ConflictingOrder):
        handle_batch(s, [entry(order_document(7), 1), entry(order_document(7, quantity=3), 2)])


def test_the_follower_dead_letters_each_refused_order_with_its_reason_and_stores_the_rest(tmp_path, db):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        feed = FakeFeed(rsps, size=5, count=4)
        feed.entry_overrides = {
            2: entry_xml(2, content=json.dumps(broken(total="-1.00"))),
            3: entry_xml(3, order_id=9, content=json.dumps(order_document(3))),  # entry says 9, document 3
            4: entry_xml(4, order_id=1, content=json.dumps(order_document(1, quantity=7))),  # 1 again, changed
        }
        follower = FeedFollower(FEED_URL, "orders", db, handle, tracking, event_types=EVENT_TYPES,
                                batch_handler=handle_batch, max_attempts=1)
        follower.poll()
    reasons = {letter["position"]: letter["reason"] for letter in follower.dead_letters()}
    assert sorted(reasons) == [2, 3, 4]
    assert "total" in reasons[2]
    assert "about order 9" in reasons[3]
    assert "order 1 was already handled" in reasons[4]
    with db.read() as s:
        assert list(s.scalars(select(Invoice.order_id))) == [1]
    assert follower.load().position == 4

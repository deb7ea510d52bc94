"""An OrderCreated entry becomes exactly one shipment to the shipping address."""
from __future__ import annotations

import json

import pytest

from common.db import Database
from common.feedclient import FeedEntry
from shipping_service.handler import handle
from shipping_service.models import Base, Shipment
from tests.unit.follower_feed import order_document


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'shipping.db'}", Base)
    database.create_all()
    return database


def entry(doc, position=1) -> FeedEntry:
    return FeedEntry(position, f"tag:atomshop.example,2026:order/{doc['id']}", "OrderCreated", json.dumps(doc),
                     f"http://orders.test/api/orders/{doc['id']}")


def test_an_order_becomes_a_shipment_to_its_shipping_address_without_prices(db):
    doc = order_document(9, quantity=4, street="<b>42 Hostile & Co</b>")
    with db.write() as s:
        handle(s, entry(doc))
    with db.read() as s:
        shipment = s.get(Shipment, 9).to_json()
    assert shipment == {"order_id": 9, "customer": doc["customer"], "shipping_address": doc["shipping_address"],
                        "lines": [{"item": {"id": 3, "name": "Widget"}, "quantity": 4}],
                        "order_url": "http://orders.test/api/orders/9"}


def test_the_same_order_twice_gives_one_shipment(db):
    for position in (1, 2):
        with db.write() as s:
            handle(s, entry(order_document(2), position))
    with db.read() as s:
        assert s.query(Shipment).count() == 1


def test_a_racing_instance_that_inserted_first_is_tolerated(db):
    from common.order_document import add_once
    doc = order_document(4)
    with db.write() as s:
        handle(s, entry(doc))
    with db.write() as s:
        real_get, calls = s.get, []

        def stale_get(*args, **kwargs):  # our check ran before the other instance committed
            calls.append(args)
            return None if len(calls) == 1 else real_get(*args, **kwargs)

        s.get = stale_get
        assert add_once(s, Shipment, 4, lambda: Shipment(order_id=4, position=2, customer_id=1, first_name="a",
                                                         last_name="b", email="c", street="s", zip="z",
                                                         city="c")) is False
        assert len(calls) == 2  # the unique violation happened and was recognised
    with db.read() as s:
        assert s.get(Shipment, 4).first_name == "Ada"

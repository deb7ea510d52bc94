"""An OrderCreated entry becomes exactly one shipment to the shipping address."""
from __future__ import annotations

import json

import pytest

from common.feeds.follow.client import FeedEntry
from common.service.db import Database
from shipping_service.handlers import handle
from shipping_service.models import Base, Shipment, ShipmentLine
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
    assert shipment == {"schema_version": 1, "order_id": 9, "state": "pending", "customer": doc["customer"],
                        "shipping_address": doc["shipping_address"],
                        "lines": [{"item": {"id": 3, "name": "Widget"}, "quantity": 4}],
                        "order_url": "http://orders.test/api/orders/9"}


def test_the_same_order_twice_gives_one_shipment(db):
    for position in (1, 2):
        with db.write() as s:
            handle(s, entry(order_document(2), position))
    with db.read() as s:
        assert s.query(Shipment).count() == 1


def test_a_racing_instance_that_inserted_first_is_tolerated(db):
    from sqlalchemy import event

    from common.service.storage import add_once
    with db.write() as s:
        handle(s, entry(order_document(4)))
    with db.write() as s:
        # Our check runs "before the other instance committed": make the existence check find nothing.
        hidden = []

        @event.listens_for(s, "do_orm_execute")
        def _hide(state):
            if state.is_select:
                hidden.append(state.statement)
                state.statement = state.statement.where(Shipment.order_id < 0)

        inserted = add_once(s, Shipment, [{"order_id": 4, "position": 2, "customer_id": 1, "first_name": "Racer",
                                           "last_name": "b", "email": "c", "street": "s", "zip": "z", "city": "c"}],
                            ShipmentLine, [{"order_id": 4, "line_no": 1, "item_id": 1, "item_name": "x",
                                            "quantity": 1}])
        # The check was fooled, the insert's conflict caught it (its re-check of the content is fooled too).
        assert inserted == set() and len(hidden) == 2
    with db.read() as s:
        assert s.get(Shipment, 4).first_name == "Ada" and len(s.get(Shipment, 4).lines) == 1


def test_the_published_shipment_is_the_stored_shipment_as_read_back(db):
    from sqlalchemy import select

    from shipping_service.handlers import handle_batch
    from shipping_service.models import Notification
    with db.write() as s:
        handle_batch(s, [entry(order_document(9, quantity=4), 1), entry(order_document(10), 2)])
    with db.read() as s:
        published = [json.loads(n.document) for n in s.scalars(select(Notification).order_by(Notification.position))]
        assert published == [s.get(Shipment, 9).to_json(), s.get(Shipment, 10).to_json()]

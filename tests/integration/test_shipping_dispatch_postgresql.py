"""A dispatch racing the follower that stores its shipment, on a real PostgreSQL (READ COMMITTED).

The soak run caught it: a dispatch whose UPDATE ran while the shipment's INSERT was not committed yet matched no
row, then read the row, committed a moment later, as pending, and answered 200 without a ShipmentDispatched entry.
"""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from common.feeds.follow.client import FeedEntry
from common.service.db import Database
from shipping_service.handlers import NotDispatchable, dispatch, handle
from shipping_service.models import Base, Notification, Shipment
from tests.races import commit_midway
from tests.unit.follower_feed import order_document


@pytest.fixture
def db(postgres):
    database = Database(postgres.create_database(), Base)
    database.create_all()
    yield database
    database.dispose()


def created(order_id: int) -> FeedEntry:
    return FeedEntry(order_id, f"tag:atomshop.example,2026:order/{order_id}", "OrderCreated",
                     json.dumps(order_document(order_id)), f"http://orders.test/api/orders/{order_id}")


def dispatch_while_the_shipment_commits(db: Database, order_id: int):
    """Dispatch while the transaction storing the shipment commits after the dispatch's first statement on the
    shipments table: the outcome of the dispatch (the shipment's state, or the exception)."""
    _, outcome = commit_midway(db, lambda s: handle(s, created(order_id)), "shipments",
                               lambda s, _: dispatch(s, order_id).state, (LookupError, NotDispatchable))
    return outcome


def test_a_dispatch_racing_the_shipments_insert_is_either_not_found_or_dispatched_with_its_entry(db):
    outcome = dispatch_while_the_shipment_commits(db, 7)
    with db.read() as s:
        state = s.scalar(select(Shipment.state).where(Shipment.order_id == 7))
        entries = [(n.event_type, json.loads(n.document)["order_id"])
                   for n in s.scalars(select(Notification).order_by(Notification.position))]
    assert state is not None, "the shipment was stored"
    if isinstance(outcome, LookupError):  # 404: the client asks again once the shipment is there
        assert state == "pending" and entries == [("ShipmentPrepared", 7)]
    else:  # 200: then it is dispatched, and the feed says so
        assert outcome == state == "dispatched", f"answered as dispatched while the shipment is {state}"
        assert entries == [("ShipmentPrepared", 7), ("ShipmentDispatched", 7)]


def test_a_dispatch_after_the_shipment_is_stored_dispatches_it_once(db):
    with db.write() as s:
        handle(s, created(8))
    for _ in range(2):
        with db.write() as s:
            assert dispatch(s, 8).state == "dispatched"
    with db.read() as s:
        assert [n.event_type for n in s.scalars(select(Notification))] == ["ShipmentPrepared", "ShipmentDispatched"]

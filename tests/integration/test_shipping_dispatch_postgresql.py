"""A dispatch racing the follower's transactions, on a real PostgreSQL (READ COMMITTED).

The soak run caught the first: a dispatch whose UPDATE ran while the shipment's INSERT was not committed yet matched
no row, then read the row, committed a moment later, as pending, and answered 200 without a ShipmentDispatched
entry. A review found the second: a dispatch holding the shipment's row lock while waiting for the feed's append
lock, which a follower's transaction held while waiting for that row. A dispatch now takes the append lock first.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import select, text

from common.feeds.follow.client import FeedEntry
from common.service.db import Database
from shipping_service.handlers import NotDispatchable, dispatch, handle
from shipping_service.models import Base, Notification, Shipment
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


def test_a_dispatch_while_the_shipment_is_being_stored_waits_for_it_and_dispatches_it_with_its_entry(db):
    # The follower's transaction has stored shipment 7 and appended its ShipmentPrepared, and not committed yet.
    # The dispatch takes the feed's append lock first, so it waits for that commit, then finds the shipment.
    outcome: list[object] = []
    with db.write() as follower:
        handle(follower, created(7))
        person = threading.Thread(target=lambda: outcome.append(dispatch_in_a_transaction(db, 7)))
        person.start()
        waiting_for_a_lock(db, outcome)
    person.join(30)

    assert outcome == ["dispatched"]
    with db.read() as s:
        entries = [(n.event_type, json.loads(n.document)["order_id"])
                   for n in s.scalars(select(Notification).order_by(Notification.position))]
    assert entries == [("ShipmentPrepared", 7), ("ShipmentDispatched", 7)]


def dispatch_in_a_transaction(db: Database, order_id: int) -> object:
    """The shipment's state after a dispatch in a transaction of its own, or the exception it raised."""
    try:
        with db.write() as s:
            return dispatch(s, order_id).state
    except Exception as exc:  # noqa: BLE001 - the outcome is checked by the caller
        return exc


def test_a_dispatch_after_the_shipment_is_stored_dispatches_it_once(db):
    with db.write() as s:
        handle(s, created(8))
    for _ in range(2):
        with db.write() as s:
            assert dispatch(s, 8).state == "dispatched"
    with db.read() as s:
        assert [n.event_type for n in s.scalars(select(Notification))] == ["ShipmentPrepared", "ShipmentDispatched"]


def cancelled(position: int, order_id: int) -> FeedEntry:
    return FeedEntry(position, f"tag:atomshop.example,2026:order/{order_id}/OrderCancelled", "OrderCancelled",
                     json.dumps({"id": order_id, "cancelled": "2026-11-23T10:00:00.000000Z"}),
                     f"http://orders.test/api/orders/{order_id}")


def test_a_dispatch_and_a_page_cancelling_that_shipment_after_another_do_not_deadlock(db):
    with db.write() as s:
        handle(s, created(5))
        handle(s, created(7))
    dispatched: list[object] = []

    # The follower's transaction for a page [OrderCancelled 5, OrderCancelled 7]: the first cancellation appends
    # (the feed's append lock, held to the commit); a person dispatches 7 meanwhile; then the second cancellation
    # locks shipment 7. Had the dispatch locked shipment 7 before the append lock, each would wait for the other.
    with db.write() as follower:
        handle(follower, cancelled(10, 5))
        person = threading.Thread(target=lambda: dispatched.append(dispatch_in_a_transaction(db, 7)))
        person.start()
        waiting_for_a_lock(db, dispatched)
        handle(follower, cancelled(11, 7))
    person.join(30)

    assert len(dispatched) == 1 and isinstance(dispatched[0], NotDispatchable), dispatched
    with db.read() as s:
        assert s.scalar(select(Shipment.state).where(Shipment.order_id == 7)) == "cancelled"


def waiting_for_a_lock(db: Database, outcome: list[object], timeout: float = 10.0) -> None:
    """Return once some other session of the database waits for a lock (the dispatch, blocked)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline and not outcome:
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND datname = current_database()")).scalar()
            # PostgreSQL keeps one snapshot of the statistics views per transaction: end it to see a fresh one.
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError(f"the dispatch never waited for a lock; it ended with {outcome}")

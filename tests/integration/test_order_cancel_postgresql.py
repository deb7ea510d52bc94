"""A cancel racing the order's own INSERT, on a real PostgreSQL (READ COMMITTED): the twin of
test_shipping_dispatch_postgresql.py. A check-and-change UPDATE that ran while the order was uncommitted matched
nothing; the read after it then found the order, committed a moment later, and took it for dispatched (409)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from order_service import create_app
from order_service.models import Notification, OrderStatus
from order_service.orders import INTAKE_KEY, parse_order_json
from order_service.status import AlreadyDispatched, cancel
from tests.races import commit_midway
from tests.unit.test_feed_http import order_body


@pytest.fixture
def app(postgres):
    app = create_app({"TESTING": True, "DATABASE_URL": postgres.create_database(), "POLL_INTERVAL": 0})
    yield app
    app.extensions["atomshop.db"].dispose()


def cancel_while_the_order_commits(app):
    """Cancel while the transaction storing the order commits after the cancel's first statement on order_status:
    (the order's id, the outcome of the cancel: True/False for the entry written or not, or its exception)."""
    [document], outcome = commit_midway(
        app.extensions["atomshop.db"],
        lambda s: app.extensions[INTAKE_KEY]._store(s, [parse_order_json(order_body())]), "order_status",
        lambda s, stored: cancel(s, stored[0]["id"])[1], (LookupError, AlreadyDispatched))
    return document["id"], outcome


def test_a_cancel_racing_the_orders_insert_is_either_not_found_or_accepted_with_its_entry(app):
    order_id, outcome = cancel_while_the_order_commits(app)
    db = app.extensions["atomshop.db"]
    with db.read() as s:
        requested = s.scalar(select(OrderStatus.cancel_requested).where(OrderStatus.order_id == order_id))
        entries = [n.event_type for n in s.scalars(select(Notification).order_by(Notification.position))]
    assert not isinstance(outcome, AlreadyDispatched), "a 409 'dispatched already' for an order never dispatched"
    if isinstance(outcome, LookupError):  # 404: the client asks again once the order is there
        assert requested is None and entries == ["OrderCreated"]
    else:  # 202: the cancellation is stored, and the feed says so
        assert outcome is True and requested is not None and entries == ["OrderCreated", "OrderCancelled"]


def test_a_second_cancel_changes_nothing(app):
    client = app.test_client()
    order_id = client.post("/api/orders", json=order_body()).get_json()["id"]
    answers = [client.post(f"/api/orders/{order_id}/cancel") for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202] and answers[0].get_json() == answers[1].get_json()
    db = app.extensions["atomshop.db"]
    with db.read() as s:
        assert [n.event_type for n in s.scalars(select(Notification))] == ["OrderCreated", "OrderCancelled"]

"""An OrderCreated entry becomes exactly one invoice with the order's lines and total."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from common.feeds.follow.client import FeedEntry
from common.service.db import Database
from invoicing_service.handlers import handle
from invoicing_service.models import Base, Invoice
from tests.unit.follower_feed import order_document


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'invoicing.db'}", Base)
    database.create_all()
    return database


def entry(doc, position=1) -> FeedEntry:
    return FeedEntry(position, f"tag:atomshop.example,2026:order/{doc['id']}", "OrderCreated", json.dumps(doc),
                     f"http://orders.test/api/orders/{doc['id']}")


def test_an_order_becomes_an_invoice_with_amounts_and_the_order_total(db):
    doc = order_document(7, quantity=3, price="19.99")
    doc["lines"].append({"item": {"id": 4, "name": "Gadget", "price": "0.10"}, "quantity": 5})
    doc["total"] = "60.47"
    with db.write() as s:
        handle(s, entry(doc))
    with db.read() as s:
        invoice = s.get(Invoice, 7).to_json()
    assert invoice == {
        "schema_version": 2, "order_id": 7, "number": "INV-2026-000007", "state": "issued",
        "customer": doc["customer"], "billing_address": doc["billing_address"],
        "lines": [{"item": {"id": 3, "name": "Widget", "price": "19.99"}, "quantity": 3, "amount": "59.97"},
                  {"item": {"id": 4, "name": "Gadget", "price": "0.10"}, "quantity": 5, "amount": "0.50"}],
        "total": "60.47", "order_url": "http://orders.test/api/orders/7"}


def test_the_same_order_twice_gives_one_invoice(db):
    doc = order_document(3)
    for position in (1, 2):
        with db.write() as s:
            handle(s, entry(doc, position))
    with db.read() as s:
        assert s.query(Invoice).count() == 1
        assert s.get(Invoice, 3).total == Decimal("43.00")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("customer"), "missing field 'customer'"),
    (lambda d: d.update(total="43.01"), "not the sum"),
    (lambda d: d.update(lines=[]), "non-empty list"),
    (lambda d: d["lines"][0].update(quantity="2"), "positive integer"),
    (lambda d: d["lines"][0]["item"].update(price=21.5), "decimal string"),
    (lambda d: d["billing_address"].pop("city"), "missing field 'city'"),
])
def test_an_order_document_with_wrong_or_missing_fields_is_refused_with_the_reason(db, mutate, message):
    doc = order_document(5)
    mutate(doc)
    with pytest.raises(ValueError, match=message):
        with db.write() as s:
            handle(s, entry(doc))
    with db.read() as s:
        assert s.query(Invoice).count() == 0


def test_content_that_is_not_json_is_refused(db):
    bad = FeedEntry(1, "x", "OrderCreated", "<order/>", None)
    with pytest.raises(ValueError, match="not JSON"):
        with db.write() as s:
            handle(s, bad)


def test_the_published_invoice_is_the_stored_invoice_as_read_back(db):
    from sqlalchemy import select

    from invoicing_service.handlers import handle_batch
    from invoicing_service.models import Notification
    two_lines = order_document(8, quantity=3, price="19.99")
    two_lines["lines"].append({"item": {"id": 4, "name": "Gadget", "price": "0.10"}, "quantity": 5})
    two_lines["total"] = "60.47"
    with db.write() as s:
        handle_batch(s, [entry(order_document(7), 1), entry(two_lines, 2), entry(order_document(7), 3)])
    with db.read() as s:
        published = [json.loads(n.document) for n in s.scalars(select(Notification).order_by(Notification.position))]
        assert published == [s.get(Invoice, 7).to_json(), s.get(Invoice, 8).to_json()]

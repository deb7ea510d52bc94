"""The invoicing and shipping feeds obey the feed rules the order feed does: entries in the transaction of their
effect, cancellations applied only after their order, unknown types skipped and counted, documents that evolve."""
from __future__ import annotations

import json

import jsonschema
import pytest
import responses

from common.contracts import INVOICE_ISSUED, INVOICING_FEED, ORDER_CANCELLED, InvoiceDocument
from common.feeds.follow.client import FeedClient
from common.feeds.follow.follower import FeedFollower
from common.feeds.publish.log import NotificationLog
from common.service.db import Database
from invoicing_service import handlers as invoicing_handlers
from invoicing_service.feed import PUBLISH as INVOICING_PUBLISH
from invoicing_service.models import Base as InvoicingBase
from invoicing_service.models import Invoice
from invoicing_service.models import Notification as InvoicingNotification
from invoicing_service.models import tracking as invoicing_tracking
from tests.unit.follower_feed import FEED_URL, FakeFeed, entry_xml
from tests.unit.shop import Shop


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def feed_types(shop: Shop, name: str) -> list[str]:
    return [event_type for event_type, _ in shop.feed_events(name)]


def test_an_order_cancelled_is_never_applied_before_its_order_created_under_catch_up(tmp_path, rsps):
    shop = Shop(tmp_path, rsps, page_size=3)
    cancelled = []
    for n in range(12):  # OrderCancelled right after its OrderCreated, often on the same page or in one batch
        order_id = shop.place()
        if n % 2:
            assert shop.client("order").post(f"/api/orders/{order_id}/cancel").status_code == 202
            cancelled.append(order_id)
    # A new follower catches up on 18 entries (6 pages, handled in groups of pages) in one pass.
    assert shop.poll("invoicing") == 18
    health = shop.client("invoicing").get("/health").get_json()
    assert health["dead_letters"] == 0 and health["retrying"] is None and health["position"] == 18
    positions: dict[tuple[str, int], int] = {}
    for position, (event_type, document) in enumerate(shop.feed_events("invoicing"), 1):
        positions[event_type, document["order_id"]] = position
    for order_id in cancelled:  # announced in the order they happened, each once
        assert positions[INVOICE_ISSUED, order_id] < positions["InvoiceCancelled", order_id]
    assert feed_types(shop, "invoicing").count("InvoiceCancelled") == len(cancelled)
    states = {i["order_id"]: i["state"] for i in shop.client("invoicing").get("/api/invoices").get_json()}
    assert sorted(o for o, s in states.items() if s == "cancelled") == cancelled


def test_an_order_cancelled_ahead_of_its_order_created_cannot_be_applied(tmp_path, rsps):
    # The planted case the feed's order rules out: the cancellation is retried, then kept as a dead letter.
    feed = FakeFeed(rsps, size=3, count=2)
    cancellation = json.dumps({"id": 1, "cancelled": "2026-01-01T00:00:00Z"})
    feed.entry_overrides[1] = entry_xml(1, 1, ORDER_CANCELLED, cancellation)
    feed.entry_overrides[2] = entry_xml(2, 1)
    db = Database(f"sqlite:///{tmp_path / 'invoicing.db'}", InvoicingBase)
    db.create_all()
    follower = FeedFollower(FEED_URL, "orders", db, invoicing_handlers.handle, invoicing_tracking,
                            event_types=invoicing_handlers.EVENT_TYPES, batch_handler=invoicing_handlers.handle_batch,
                            client=FeedClient(connect_timeout=1, read_timeout=1))
    for _ in range(3):
        follower.poll()
    [letter] = follower.dead_letters()
    assert letter["position"] == 1 and "has not been handled" in letter["reason"]
    with db.read() as session:
        assert session.get(Invoice, 1).state == "issued"
        assert [row.event_type for row in session.query(InvoicingNotification)] == [INVOICE_ISSUED]


def test_an_invoice_and_its_entry_are_stored_together_or_not_at_all(tmp_path, rsps, monkeypatch):
    shop = Shop(tmp_path, rsps)
    shop.place()
    calls = []
    append_many = type(INVOICING_PUBLISH).append_many  # how a follower's run of OrderCreated publishes

    def failing_once(self, session, event_type, documents):
        calls.append(event_type)
        if len(calls) == 1:
            raise RuntimeError("the feed's table is unavailable")
        return append_many(self, session, event_type, documents)

    monkeypatch.setattr(type(INVOICING_PUBLISH), "append_many", failing_once)
    assert shop.poll("invoicing") == 0  # the entry is retried: its invoice was rolled back with the failed append
    assert shop.client("invoicing").get("/api/invoices").get_json() == [] and shop.feed_events("invoicing") == []
    assert shop.poll("invoicing") == 1
    assert len(shop.client("invoicing").get("/api/invoices").get_json()) == 1
    assert feed_types(shop, "invoicing") == [INVOICE_ISSUED]


def test_a_follower_of_version_1_documents_keeps_working_when_the_publisher_adds_an_optional_field(
        tmp_path, rsps, monkeypatch):
    class InvoiceDocumentV2(InvoiceDocument):
        schema_version: int = 2
        payment_terms: str | None = None  # new in version 2, optional

    shop = Shop(tmp_path, rsps)
    v1_schema = shop.client("invoicing").get("/schemas/InvoiceIssued.json").get_json()
    monkeypatch.setitem(INVOICING_FEED, INVOICE_ISSUED, InvoiceDocumentV2)
    v1_to_document = Invoice.to_document
    monkeypatch.setattr(Invoice, "to_document", lambda self: InvoiceDocumentV2.model_validate({
        **v1_to_document(self).model_dump(mode="json"), "schema_version": 2, "payment_terms": "30 days net"}))
    order_id = shop.place()
    shop.poll("invoicing")
    [(event_type, published)] = shop.feed_events("invoicing")
    assert published["schema_version"] == 2 and published["payment_terms"] == "30 days net"
    jsonschema.validate(published, v1_schema, cls=jsonschema.Draft202012Validator)  # v1's schema still holds
    assert shop.poll("order") == 1  # the order service reads it with its version-1 model
    assert shop.status(order_id)["invoice"]["state"] == "issued"
    order_health = shop.client("order").get("/health").get_json()
    assert order_health["feeds"]["invoicing"]["dead_letters"] == 0


def test_an_unknown_event_type_in_a_followed_feed_is_skipped_and_counted(tmp_path, rsps):
    shop = Shop(tmp_path, rsps)
    order_id = shop.place()
    shop.poll("invoicing")
    db = shop.apps["invoicing"].extensions["atomshop.db"]
    with db.write() as session:  # a newer invoicing publishes a type this order service does not know
        NotificationLog(InvoicingNotification).append(session, "InvoicePaid", {"order_id": order_id, "paid": "x"})
    assert shop.poll("order") == 1
    invoicing = shop.client("order").get("/health").get_json()["feeds"]["invoicing"]
    assert invoicing["position"] == 2 and invoicing["skipped"] == 1 and invoicing["handled"] == 1
    assert invoicing["dead_letters"] == 0 and shop.status(order_id)["invoice"]["state"] == "issued"


@pytest.mark.parametrize("service, event_type", [("invoicing", "InvoiceIssued"), ("invoicing", "InvoiceCancelled"),
                                                 ("shipping", "ShipmentPrepared"), ("shipping", "ShipmentDispatched"),
                                                 ("shipping", "ShipmentCancelled"),
                                                 ("shipping", "ShipmentCancellationRefused"),
                                                 ("order", "OrderCancelled")])
def test_each_service_serves_the_schema_of_each_event_type_it_publishes(tmp_path, rsps, service, event_type):
    schema = Shop(tmp_path, rsps).client(service).get(f"/schemas/{event_type}.json")
    assert schema.status_code == 200
    body = schema.get_json()
    jsonschema.Draft202012Validator.check_schema(body)
    assert body["title"] == event_type and "schema_version" in body["properties"]


def test_every_entry_of_every_feed_validates_against_the_schema_its_category_names(tmp_path, rsps):
    shop = Shop(tmp_path, rsps)
    for _ in range(3):
        shop.place()
    shop.client("order").post("/api/orders/1/cancel")
    shop.poll("shipping")
    shop.client("shipping").post("/api/shipments/2/dispatch")
    shop.settle()
    shop.client("order").post("/api/orders/2/cancel")  # not heard of the dispatch yet? then refused
    shop.settle()
    seen = set()
    for name in ("order", "invoicing", "shipping"):
        for event_type, document in shop.feed_events(name):
            schema = shop.client(name).get(f"/schemas/{event_type}.json").get_json()
            jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
            seen.add(event_type)
    assert len(seen) >= 7, seen

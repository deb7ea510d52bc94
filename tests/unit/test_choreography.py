"""Every service publishes: the order status flows back through the invoicing and shipping feeds, and a
cancellation is a choreography — each step idempotent, each entry written with the effect it records."""
from __future__ import annotations

import pytest
import responses

from tests.unit.shop import Shop


@pytest.fixture
def shop(tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield Shop(tmp_path, rsps)


def types(events) -> list[str]:
    return [event_type for event_type, _ in events]


def test_an_order_is_invoiced_and_prepared_and_the_order_service_hears_both_from_the_feeds(shop):
    order_id = shop.place()
    assert shop.status(order_id) == {"order_id": order_id, "invoice": None, "shipment": None, "cancellation": None}
    shop.settle()
    assert shop.status(order_id) == {
        "order_id": order_id, "invoice": {"state": "issued", "url": f"http://invoicing.test/api/invoices/{order_id}"},
        "shipment": {"state": "pending", "url": f"http://shipping.test/api/shipments/{order_id}"},
        "cancellation": None}
    [(event_type, invoice)] = shop.feed_events("invoicing")
    assert event_type == "InvoiceIssued"
    assert invoice == shop.client("invoicing").get(f"/api/invoices/{order_id}").get_json()
    assert invoice["state"] == "issued" and invoice["schema_version"] == 2 and invoice["number"].startswith("INV-")
    assert types(shop.feed_events("shipping")) == ["ShipmentPrepared"]


def test_a_cancel_is_accepted_once_and_both_services_cancel_so_it_is_done(shop):
    order_id = shop.place()
    shop.settle()
    first = shop.client("order").post(f"/api/orders/{order_id}/cancel")
    again = shop.client("order").post(f"/api/orders/{order_id}/cancel")
    assert first.status_code == again.status_code == 202
    assert first.get_json()["cancellation"]["state"] == "requested" and first.get_json() == again.get_json()
    assert types(shop.feed_events("order")) == ["OrderCreated", "OrderCancelled"]
    assert shop.feed_events("order")[1][1] == {"schema_version": 1, "id": order_id,
                                               "cancelled": first.get_json()["cancellation"]["requested"]}
    shop.settle()
    status = shop.status(order_id)
    assert status["invoice"]["state"] == status["shipment"]["state"] == "cancelled"
    assert status["cancellation"]["state"] == "done"
    assert types(shop.feed_events("invoicing")) == ["InvoiceIssued", "InvoiceCancelled"]
    assert types(shop.feed_events("shipping")) == ["ShipmentPrepared", "ShipmentCancelled"]
    assert shop.client("invoicing").get(f"/api/invoices/{order_id}").get_json()["state"] == "cancelled"
    assert shop.client("shipping").get(f"/api/shipments/{order_id}").get_json()["state"] == "cancelled"
    assert shop.client("shipping").post(f"/api/shipments/{order_id}/dispatch").status_code == 409
    assert types(shop.feed_events("shipping")) == ["ShipmentPrepared", "ShipmentCancelled"]


def test_a_cancel_before_invoicing_and_shipping_heard_of_the_order_still_ends_done(shop):
    order_id = shop.place()
    assert shop.client("order").post(f"/api/orders/{order_id}/cancel").status_code == 202
    shop.settle()  # both followers see OrderCreated then OrderCancelled, in feed order, maybe in one batch
    assert shop.status(order_id)["cancellation"]["state"] == "done"


def test_dispatch_is_idempotent_and_a_later_cancel_is_refused_by_shipping(shop):
    order_id = shop.place()
    shop.poll("shipping")
    first = shop.client("shipping").post(f"/api/shipments/{order_id}/dispatch")
    again = shop.client("shipping").post(f"/api/shipments/{order_id}/dispatch")
    assert first.status_code == again.status_code == 200
    assert first.get_json()["state"] == "dispatched" and first.get_json() == again.get_json()
    assert types(shop.feed_events("shipping")) == ["ShipmentPrepared", "ShipmentDispatched"]
    # The order service has not heard of the dispatch yet: the cancel is accepted, and shipping refuses it.
    assert shop.client("order").post(f"/api/orders/{order_id}/cancel").status_code == 202
    shop.settle()
    status = shop.status(order_id)
    assert status["shipment"]["state"] == "dispatched" and status["invoice"]["state"] == "cancelled"
    assert status["cancellation"]["state"] == "refused"
    assert types(shop.feed_events("shipping")) == ["ShipmentPrepared", "ShipmentDispatched",
                                                   "ShipmentCancellationRefused"]


def test_a_cancel_of_an_order_known_to_be_dispatched_is_409_and_publishes_nothing(shop):
    order_id = shop.place()
    shop.poll("shipping")
    shop.client("shipping").post(f"/api/shipments/{order_id}/dispatch")
    shop.settle()
    response = shop.client("order").post(f"/api/orders/{order_id}/cancel")
    assert response.status_code == 409 and "dispatched" in response.get_json()["error"]
    assert types(shop.feed_events("order")) == ["OrderCreated"]
    assert shop.status(order_id)["cancellation"] is None


@pytest.mark.parametrize("path", ["/api/orders/99/status", "/api/orders/99/cancel"])
def test_an_unknown_order_has_no_status_and_cannot_be_cancelled(shop, path):
    client = shop.client("order")
    response = client.post(path) if path.endswith("cancel") else client.get(path)
    assert response.status_code == 404 and "error" in response.get_json()
    assert shop.feed_events("order") == []


def test_dispatching_an_unknown_shipment_is_404(shop):
    response = shop.client("shipping").post("/api/shipments/99/dispatch")
    assert response.status_code == 404 and "error" in response.get_json()
    assert shop.feed_events("shipping") == []


def test_the_order_page_shows_a_timeline_and_a_cancel_button_that_works_with_its_csrf_token(shop):
    order_id = shop.place()
    shop.settle()
    shop.apps["order"].config["WTF_CSRF_ENABLED"] = True
    client = shop.client("order")
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "Invoice issued" in page and "Shipment prepared" in page and 'id="cancel"' in page
    assert client.post(f"/orders/{order_id}/cancel").status_code == 400  # no token: refused
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(f"/orders/{order_id}/cancel", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/orders/{order_id}")
    shop.settle()
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "Cancellation requested" in page and "Invoice cancelled" in page and "Shipment cancelled" in page
    assert 'id="cancellation-state">done<' in page and 'id="cancel"' not in page


def test_the_shipment_page_has_a_dispatch_button_that_works_with_its_csrf_token(shop):
    order_id = shop.place()
    shop.poll("shipping")
    shop.apps["shipping"].config["WTF_CSRF_ENABLED"] = True
    client = shop.client("shipping")
    page = client.get(f"/shipments/{order_id}").get_data(as_text=True)
    assert 'id="shipment-state">pending<' in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(f"/shipments/{order_id}/dispatch", data={"csrf_token": token})
    assert response.status_code == 303
    page = client.get(f"/shipments/{order_id}").get_data(as_text=True)
    assert 'id="shipment-state">dispatched<' in page and 'id="dispatch"' not in page


def test_a_link_from_another_service_is_a_link_only_when_it_is_http(shop):
    from order_service.status import Step

    assert Step(None, "x", "javascript:alert(1)").link is None
    assert Step(None, "x", "HTTPS://a/api/invoices/7").link == "HTTPS://a/invoices/7"

"""Cancel and dispatch in Chromium, as people do it, on the three services as real processes.

Invoicing and shipping poll the order feed on a short schedule; the order service's own polling is off
(POLL_INTERVAL=0 for it), so it hears of invoices and shipments when someone presses "Poll now" on its order list —
which lets a test cancel an order the warehouse has just dispatched before the order service knows.
"""
from __future__ import annotations

import pytest
import requests

from tests.browser import follow, screenshot
from tests.support import three_services, wait_until


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with three_services(tmp_path_factory.mktemp("shop"), {"order": "0", "invoicing": "0.3", "shipping": "0.3"},
                        feed_page_size=5) as urls:
        yield urls


def place(order_url: str) -> int:
    response = requests.post(order_url + "/api/orders", timeout=10, json={
        "customer_id": 2, "shipping_address": {"street": "12 Analytical Row", "zip": "W1", "city": "London"},
        "billing_address": {"street": "12 Analytical Row", "zip": "W1", "city": "London"},
        "lines": [{"item_id": 1, "quantity": 1}, {"item_id": 2, "quantity": 3}]})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_for(url: str, predicate, message: str):
    return wait_until(lambda: predicate(requests.get(url, timeout=5).json()), 20, 0.2, message)


def poll_now(page, system) -> None:
    """Press "Poll now" on the order list: the order service reads the invoicing and shipping feeds."""
    page.goto(system["order"] + "/")
    follow(page, page.get_by_role("button", name="Poll now"))
    assert "Polled the invoicing feed and the shipping feed" in page.locator(".flash").inner_text()


def test_placed_invoiced_dispatched_and_the_order_page_says_so(browser_page, system, output_dir):
    page, order_id = browser_page, place(system["order"])
    wait_for(f"{system['shipping']}/api/shipments/{order_id}", lambda s: s.get("state") == "pending", "a shipment")
    wait_for(f"{system['invoicing']}/api/invoices/{order_id}", lambda i: i.get("state") == "issued", "an invoice")

    page.goto(f"{system['shipping']}/shipments/{order_id}")
    assert page.locator("#shipment-state").inner_text() == "pending"
    follow(page, page.get_by_role("button", name="Dispatch"))
    assert page.locator("#shipment-state").inner_text() == "dispatched"
    assert page.get_by_role("button", name="Dispatch").count() == 0
    screenshot(page, output_dir, "01-shipment-dispatched")

    poll_now(page, system)
    page.goto(f"{system['order']}/orders/{order_id}")
    timeline = page.locator("#timeline").inner_text()
    for step in ("Order placed", "Invoice issued", "Shipment prepared", "Shipment dispatched"):
        assert step in timeline, timeline
    assert timeline.index("Order placed") < timeline.index("Shipment prepared") < timeline.index("Shipment dispatched")
    assert page.get_by_role("button", name="Cancel order").count() == 0
    assert "can no longer be cancelled" in page.locator("#cancellation").inner_text()
    assert page.get_by_role("link", name="Invoice issued").get_attribute("href") == \
        f"{system['invoicing']}/invoices/{order_id}"  # the invoice's page, next to its JSON document
    screenshot(page, output_dir, "02-order-page-dispatched")


def test_placed_then_cancelled_is_cancelled_everywhere(browser_page, system, output_dir):
    page, order_id = browser_page, place(system["order"])
    page.goto(f"{system['order']}/orders/{order_id}")
    follow(page, page.get_by_role("button", name="Cancel order"))
    assert "Cancellation requested" in page.locator(".flash").inner_text()
    assert page.locator("#cancellation-state").inner_text() == "requested"
    screenshot(page, output_dir, "01-cancellation-requested")

    wait_for(f"{system['invoicing']}/api/invoices/{order_id}", lambda i: i.get("state") == "cancelled",
             "the invoice to be cancelled")
    wait_for(f"{system['shipping']}/api/shipments/{order_id}", lambda s: s.get("state") == "cancelled",
             "the shipment to be cancelled")
    poll_now(page, system)
    page.goto(f"{system['order']}/orders/{order_id}")
    assert page.locator("#cancellation-state").inner_text() == "done"
    timeline = page.locator("#timeline").inner_text()
    for step in ("Cancellation requested", "Invoice cancelled", "Shipment cancelled"):
        assert step in timeline, timeline
    screenshot(page, output_dir, "02-order-page-cancelled")

    page.goto(f"{system['invoicing']}/invoices/{order_id}")
    assert page.locator("#invoice-state").inner_text() == "cancelled"
    screenshot(page, output_dir, "03-invoice-cancelled")
    page.goto(f"{system['shipping']}/shipments/{order_id}")
    assert page.locator("#shipment-state").inner_text() == "cancelled"
    assert page.get_by_role("button", name="Dispatch").count() == 0
    screenshot(page, output_dir, "04-shipment-cancelled")


def test_dispatched_then_cancelled_is_refused_by_shipping(browser_page, system, output_dir):
    page, order_id = browser_page, place(system["order"])
    wait_for(f"{system['shipping']}/api/shipments/{order_id}", lambda s: s.get("state") == "pending", "a shipment")
    page.goto(f"{system['shipping']}/shipments/{order_id}")
    follow(page, page.get_by_role("button", name="Dispatch"))

    # The order service has not polled since: it does not know yet, so it accepts the cancellation.
    page.goto(f"{system['order']}/orders/{order_id}")
    follow(page, page.get_by_role("button", name="Cancel order"))
    wait_for(f"{system['invoicing']}/api/invoices/{order_id}", lambda i: i.get("state") == "cancelled",
             "the invoice to be cancelled")
    wait_until(lambda: "cancellation was refused" in requests.get(f"{system['shipping']}/shipments/{order_id}",
                                                                   timeout=5).text, 20, 0.2, "shipping to refuse")
    poll_now(page, system)
    page.goto(f"{system['order']}/orders/{order_id}")
    assert page.locator("#cancellation-state").inner_text() == "refused"
    timeline = page.locator("#timeline").inner_text()
    assert "Shipment dispatched" in timeline and "Cancellation refused" in timeline, timeline
    screenshot(page, output_dir, "01-order-page-cancellation-refused")
    page.goto(f"{system['shipping']}/shipments/{order_id}")
    assert page.locator("#shipment-state").inner_text() == "dispatched"
    screenshot(page, output_dir, "02-shipment-refused-the-cancellation")

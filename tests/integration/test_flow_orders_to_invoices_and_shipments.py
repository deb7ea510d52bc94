"""Orders placed over HTTP become exactly one invoice and one shipment each, through the real feed."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from tests.support import ServiceProcess, wait_until


def place_orders(order_url: str, count: int, threads: int = 4) -> list[dict]:
    """POST `count` varied orders; returns the order documents answered with 201."""
    customers = requests.get(f"{order_url}/api/customers", timeout=5).json()
    items = requests.get(f"{order_url}/api/items", timeout=5).json()

    def place(n: int) -> dict:
        body = {"customer_id": customers[n % len(customers)]["id"],
                "shipping_address": {"street": f"{n} Ship Street", "zip": f"{10000 + n}", "city": "Portsmouth"},
                "billing_address": {"street": f"{n} Bill Lane", "zip": f"{20000 + n}", "city": "Billerica"},
                "lines": [{"item_id": items[(n + k) % len(items)]["id"], "quantity": 1 + (n + k) % 4}
                          for k in range(1 + n % 3)]}
        response = requests.post(f"{order_url}/api/orders", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(place, range(count)))


@pytest.fixture
def system(tmp_path):
    order = ServiceProcess("order_service", tmp_path / "order", env={"FEED_PAGE_SIZE": "5"})
    consumers = {"FEED_PAGE_SIZE": "5", "ORDER_FEED_URL": f"{order.url}/feed", "POLL_INTERVAL": "0"}
    invoicing = ServiceProcess("invoicing_service", tmp_path / "invoicing", env=consumers)
    shipping = ServiceProcess("shipping_service", tmp_path / "shipping", env=consumers)
    with order, invoicing, shipping:
        yield order, invoicing, shipping


def test_each_order_yields_one_invoice_and_one_shipment_with_its_totals_and_addresses(system):
    order, invoicing, shipping = system
    orders = {o["id"]: o for o in place_orders(order.url, 23)}
    assert requests.post(f"{invoicing.url}/poll", timeout=30).json()["processed"] == 23
    assert requests.post(f"{shipping.url}/poll", timeout=30).json()["processed"] == 23
    assert requests.post(f"{invoicing.url}/poll", timeout=30).json()["processed"] == 0

    invoices = requests.get(f"{invoicing.url}/api/invoices", timeout=5).json()
    shipments = requests.get(f"{shipping.url}/api/shipments", timeout=5).json()
    assert [i["order_id"] for i in invoices] == sorted(orders) == [s["order_id"] for s in shipments]
    for invoice, shipment in zip(invoices, shipments, strict=True):
        placed = orders[invoice["order_id"]]
        assert invoice["total"] == placed["total"]
        assert sum(Decimal(line["amount"]) for line in invoice["lines"]) == Decimal(placed["total"])
        assert invoice["billing_address"] == placed["billing_address"]
        assert invoice["customer"] == placed["customer"] == shipment["customer"]
        assert [(line["item"], line["quantity"]) for line in invoice["lines"]] == \
               [(line["item"], line["quantity"]) for line in placed["lines"]]
        assert shipment["shipping_address"] == placed["shipping_address"]
        assert [(line["item"]["id"], line["quantity"]) for line in shipment["lines"]] == \
               [(line["item"]["id"], line["quantity"]) for line in placed["lines"]]
    one = requests.get(f"{invoicing.url}/api/invoices/{invoices[0]['order_id']}", timeout=5)
    assert one.json() == invoices[0]
    assert requests.get(f"{shipping.url}/api/shipments/99999", timeout=5).status_code == 404
    html = requests.get(f"{invoicing.url}/invoices/{invoices[0]['order_id']}", timeout=5).text
    assert f"{order.url}/orders/{invoices[0]['order_id']}" in html


def test_the_scheduled_poller_picks_new_orders_up_within_an_interval(tmp_path):
    with ServiceProcess("order_service", tmp_path / "order") as order, \
            ServiceProcess("invoicing_service", tmp_path / "inv",
                           env={"ORDER_FEED_URL": f"{order.url}/feed", "POLL_INTERVAL": "0.2"}) as invoicing:
        [placed] = place_orders(order.url, 1)
        invoice = wait_until(lambda: requests.get(f"{invoicing.url}/api/invoices/{placed['id']}", timeout=5).ok,
                             timeout=10, message="the invoice to appear")
        assert invoice
        health = requests.get(f"{invoicing.url}/health", timeout=5).json()
        assert health["position"] == 1 and health["last_poll"] and health["last_error"] is None


def test_a_stopped_order_service_gives_502_then_the_consumer_catches_up(system):
    order, invoicing, shipping = system
    place_orders(order.url, 3)
    order.stop()
    response = requests.post(f"{invoicing.url}/poll", timeout=30)
    assert response.status_code == 502 and "connection refused" in response.json()["detail"]
    assert "is not answering (connection refused)" in response.json()["error"]
    health = requests.get(f"{invoicing.url}/health", timeout=5).json()
    assert health["status"] == "ok" and "connection refused" in health["last_error"]
    order.start()
    assert requests.post(f"{invoicing.url}/poll", timeout=30).json()["processed"] == 3
    assert requests.get(f"{invoicing.url}/health", timeout=5).json()["last_error"] is None

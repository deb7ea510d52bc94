"""The whole system in production shape, as compose.yaml runs it: PostgreSQL (a database per service, schemas from
the services' own migrations), three instances of the order service under gunicorn (it follows feeds too), two
instances each of invoicing and shipping (`--workers 1`, so one scheduled poller per instance) reading the feed
through nginx with the repo's config, and every request from the outside going through nginx."""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import feedparser
import pytest
import requests
from alembic.script import ScriptDirectory
from sqlalchemy import text

from common.service.db import Database
from common.service.migrate import alembic_config, migrations_dir
from tests.servers import GunicornServices, feed_links, page_links
from tests.support import wait_until

PAGE_SIZE = 4
POLL_INTERVAL = 0.5
JSON_ORDERS = 13  # a few full archive pages and a partly filled current page
FORM = {"customer_id": "3", "shipping_street": "7 <Form> Street", "shipping_zip": "70007",
        "shipping_city": "Formsby", "billing_street": "8 Billing & Co Road", "billing_zip": "80008",
        "billing_city": "Billham", "lines-0-item_id": "2", "lines-0-quantity": "3",
        "lines-1-item_id": "6", "lines-1-quantity": "1"}


@pytest.fixture(scope="module")
def system(postgres, tmp_path_factory):
    """Services under gunicorn (order: 3 instances; invoicing and shipping: 2 each) behind nginx."""
    with GunicornServices(postgres, tmp_path_factory.mktemp("production"), order_instances=3, consumer_instances=2,
                          threads=4, poll_interval=POLL_INTERVAL, page_size=PAGE_SIZE) as services:
        with services.front_door() as door:
            yield services, door


@pytest.fixture(scope="module")
def placed(system) -> dict[int, dict]:
    """Orders placed through the door: most through the JSON API, concurrently, and one through the HTML form."""
    services, door = system
    base = door.url + "/order"
    customers = requests.get(base + "/api/customers", timeout=10).json()
    items = requests.get(base + "/api/items", timeout=10).json()

    def place(n: int) -> dict:
        body = {"customer_id": customers[n % len(customers)]["id"],
                "shipping_address": {"street": f"{n} Ship Street", "zip": f"{10000 + n}", "city": "Portsmouth"},
                "billing_address": {"street": f"{n} Bill Lane", "zip": f"{20000 + n}", "city": "Billerica"},
                "lines": [{"item_id": items[(n + k) % len(items)]["id"], "quantity": 1 + (n + k) % 4}
                          for k in range(1 + n % 3)]}
        response = requests.post(base + "/api/orders", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    with ThreadPoolExecutor(4) as pool:
        orders = list(pool.map(place, range(JSON_ORDERS)))
    orders.append(place_through_the_form(base))
    return {order["id"]: order for order in orders}


def place_through_the_form(base: str) -> dict:
    """A browser's way: the form page (session cookie, CSRF token), a POST, the 303 to the new order's page."""
    browser = requests.Session()
    form_page = browser.get(base + "/orders/new", timeout=10)
    assert form_page.status_code == 200
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form_page.text).group(1)
    action = next(link for link in page_links(form_page.text) if link.endswith("/orders"))
    assert action == "/order/orders", "the form must post back through the door"

    response = browser.post(base + "/orders", data={**FORM, "csrf_token": token}, timeout=30,
                            allow_redirects=False)

    assert response.status_code == 303, response.text
    order_id = int(re.fullmatch(r"(?:https?://[^/]+)?/order/orders/(\d+)", response.headers["Location"]).group(1))
    assert browser.get(f"{base}/orders/{order_id}", timeout=10).status_code == 200
    return requests.get(f"{base}/api/orders/{order_id}", timeout=10).json()


def through_the_door(door, path: str):
    response = requests.get(door.url + path, timeout=10)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:200]}"
    return response.json()


@pytest.fixture(scope="module")
def delivered(system, placed):
    """Invoices and shipments through the door, once the scheduled pollers have brought every order in."""
    services, door = system
    wanted = sorted(placed)
    wait_until(lambda: [i["order_id"] for i in through_the_door(door, "/invoicing/api/invoices")] == wanted
               and [s["order_id"] for s in through_the_door(door, "/shipping/api/shipments")] == wanted,
               60, interval=0.25, message=f"{len(wanted)} invoices and shipments")
    return through_the_door(door, "/invoicing/api/invoices"), through_the_door(door, "/shipping/api/shipments")


def test_each_order_placed_through_the_door_yields_exactly_one_invoice_and_one_shipment(system, placed, delivered):
    services, door = system
    invoices, shipments = delivered

    assert [i["order_id"] for i in invoices] == sorted(placed) == [s["order_id"] for s in shipments]
    for invoice, shipment in zip(invoices, shipments, strict=True):
        order = placed[invoice["order_id"]]
        assert invoice["total"] == order["total"]
        assert sum(Decimal(line["amount"]) for line in invoice["lines"]) == Decimal(order["total"])
        assert invoice["billing_address"] == order["billing_address"]
        assert shipment["shipping_address"] == order["shipping_address"]
        assert invoice["customer"] == order["customer"] == shipment["customer"]
        assert [(line["item"], line["quantity"]) for line in invoice["lines"]] == \
               [(line["item"], line["quantity"]) for line in order["lines"]]
        assert [(line["item"]["id"], line["quantity"]) for line in shipment["lines"]] == \
               [(line["item"]["id"], line["quantity"]) for line in order["lines"]]
    form_order = max(placed)
    assert placed[form_order]["shipping_address"] == {"street": "7 <Form> Street", "zip": "70007",
                                                      "city": "Formsby"}
    assert placed[form_order]["total"] == "71.97"  # 3 × USB-C cable 9.99 + 1 × desk lamp 42.00

    # Every instance polled on its own schedule, and the two of a service handled each order once between them:
    # the durable counter lives in the tracking row, advanced in the transaction that stores the effect.
    for name in ("invoicing", "shipping"):
        # An instance whose first poll failed (the door not up yet) backs off before it polls again: wait for it.
        def every_instance_polled(name: str = name):
            health = [requests.get(i.url + "/health", timeout=5).json() for i in services.consumers[name]]
            return health if all(h["polls"] > 0 and h["last_poll"] for h in health) else None
        health = wait_until(every_instance_polled, 30, message=f"every {name} instance to poll successfully")
        assert {(h["position"], h["handled"], h["dead_letters"]) for h in health} == {(len(placed), len(placed), 0)}


def test_the_consumers_poll_through_the_cache_not_the_order_service(system, delivered):
    services, door = system
    instances = services.invoicing + services.shipping
    period = int(re.search(r"max-age=(\d+)", requests.get(door.url + "/order/feed", timeout=10)
                           .headers["Cache-Control"]).group(1))
    window = 2 * period + 1

    def polls() -> int:
        return sum(requests.get(i.url + "/health", timeout=5).json()["polls"] for i in instances)

    def origin_feed_requests() -> int:  # the order feed's requests that reached any order instance
        return sum(len(o.access_lines("/feed")) for o in services.orders)

    polls_before, origin_before = polls(), origin_feed_requests()
    time.sleep(window)
    polled, origin = polls() - polls_before, origin_feed_requests() - origin_before

    print(f"\n{len(instances)} consumer instances polling every {POLL_INTERVAL}s through nginx for {window}s: "
          f"{polled} polls, {origin} reached the order service (cache period {period}s)")
    assert polled >= len(instances) * window / POLL_INTERVAL / 2, "the scheduled pollers should keep polling"
    assert origin <= window / period + 2, f"{polled} polls cost the order service {origin} feed requests"


def test_links_in_the_feed_fetched_through_the_door_point_at_the_door(system, placed):
    services, door = system
    base = door.url + "/order"
    url, seen = base + "/feed", []
    while url:  # the whole feed, newest page first
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, url
        feed = feedparser.parse(response.content)
        links = feed_links(feed)
        assert links["self"] == url
        assert all(href.startswith(base + "/feed") for href in links.values()), links
        for entry in feed.entries:
            alternate = next(link["href"] for link in entry.links if link["rel"] == "alternate")
            assert alternate == f"{base}/api/orders/{alternate.rsplit('/', 1)[1]}"
            seen.append(int(alternate.rsplit("/", 1)[1]))
        url = links.get("prev-archive")

    assert sorted(seen) == sorted(placed)


def test_links_in_every_page_fetched_through_the_door_point_at_the_door(system, placed, delivered):
    services, door = system
    order_id = max(placed)  # the form's
    pages = ["/", "/order/", "/order/orders/new", f"/order/orders/{order_id}", "/invoicing/",
             f"/invoicing/invoices/{order_id}", "/shipping/", f"/shipping/shipments/{order_id}"]
    for path in pages:
        response = requests.get(door.url + path, timeout=10)
        assert response.status_code == 200, path
        assert "<Form>" not in response.text, f"{path} does not escape the address"
        for link in page_links(response.text):
            if link.startswith(("#", "data:", "mailto:")):
                continue
            if link.startswith(("http:", "https:", "//")):
                assert link.startswith(door.url + "/"), f"{path} links {link}"
            else:
                assert link.startswith(("/order/", "/invoicing/", "/shipping/")), f"{path} links {link}"
    # The consumers learnt the order's URL from the feed they read through the door: their pages link it there.
    for path in (f"/invoicing/invoices/{order_id}", f"/shipping/shipments/{order_id}"):
        assert f'href="{door.url}/order/orders/{order_id}"' in requests.get(door.url + path, timeout=10).text, path


def test_each_service_built_its_own_database_from_its_migration_history_at_start_up(system):
    services, door = system
    for package, server in (("order_service", services.order), ("invoicing_service", services.invoicing[0]),
                            ("shipping_service", services.shipping[0])):
        db = Database(server.env["DATABASE_URL"])
        try:
            with db.read() as session:
                version = session.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        finally:
            db.dispose()
        head = ScriptDirectory.from_config(alembic_config(migrations_dir(package))).get_current_head()
        assert version == [head], package
    urls = {server.env["DATABASE_URL"] for server in (services.order, *services.invoicing, *services.shipping)}
    assert len(urls) == 3, "one database per service, shared by the instances of a consumer"

"""The whole flow in Chromium, as a person does it: order form → order → Poll now → invoice and shipment.

The three services run as real processes (`python -m …`) with scheduled polling off (POLL_INTERVAL=0), so
the "Poll now" buttons are what moves orders downstream.
"""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
import requests

from tests.browser import PHONE, follow, screenshot
from tests.support import three_services

FEED_PAGE_SIZE = 3
ITEMS = {"Mechanical keyboard": Decimal("89.90"), "Coffee mug": Decimal("12.50"), "Notebook": Decimal("4.20")}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """Order, invoicing and shipping on free ports, each knowing where the other two are."""
    with three_services(tmp_path_factory.mktemp("system"), dict.fromkeys(("order", "invoicing", "shipping"), "0"),
                        feed_page_size=FEED_PAGE_SIZE, follow_every_feed=False) as urls:
        yield urls


def place_order_by_api(order_url: str) -> dict:
    response = requests.post(order_url + "/api/orders", timeout=10, json={
        "customer_id": 3, "shipping_address": {"street": "1 Navy Yard", "zip": "20374", "city": "Washington"},
        "billing_address": {"street": "1 Navy Yard", "zip": "20374", "city": "Washington"},
        "lines": [{"item_id": 4, "quantity": 5}]})
    assert response.status_code == 201, response.text
    return response.json()


def fill_shipping_address(page, street="12 Bletchley Park", zip_code="MK3 6EB", city="Milton Keynes"):
    page.get_by_label("Street").first.fill(street)
    page.get_by_label("ZIP code").first.fill(zip_code)
    page.get_by_label("City").first.fill(city)


def line(page, index: int):
    return page.locator("[data-line]").nth(index)


def test_an_order_with_two_lines_goes_through_invoicing_and_shipping(browser_page, system, output_dir):
    page = browser_page
    page.goto(system["order"] + "/")
    screenshot(page, output_dir, "01-order-list")
    follow(page, page.get_by_role("link", name="Place a new order"))
    assert page.url == system["order"] + "/orders/new"

    page.get_by_label("Customer").select_option(label="Alan Turing <alan@example.com>")
    fill_shipping_address(page)
    assert page.get_by_label("Same as the shipping address").is_checked()
    assert not page.locator("#billing_street").is_visible(), "billing fields stay hidden while 'same' is ticked"
    line(page, 0).get_by_label("Item").select_option(label="Mechanical keyboard (89.90)")
    line(page, 0).get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add line").click()
    assert page.locator("[data-line]").count() == 2 and page.url.endswith("/orders/new"), "added without a reload"
    assert page.evaluate("document.activeElement.name") == "lines-1-item_id"
    line(page, 1).get_by_label("Item").select_option(label="Coffee mug (12.50)")
    line(page, 1).get_by_label("Quantity").fill("0")
    assert page.locator("[data-order-total]").inner_text() == "–"  # no total while a line is invalid
    screenshot(page, output_dir, "02-order-form")

    follow(page, page.get_by_role("button", name="Place order", exact=True))
    error = page.locator("#lines-1-quantity-errors")
    assert "1 to 9999" in error.inner_text()
    quantity = line(page, 1).get_by_label("Quantity")
    assert "lines-1-quantity-errors" in quantity.get_attribute("aria-describedby")
    assert quantity.get_attribute("aria-invalid") == "true"
    # The message sits right by its field, and everything typed is still there.
    field_box, error_box = quantity.bounding_box(), error.bounding_box()
    assert abs(field_box["y"] - (error_box["y"] + error_box["height"])) < 40
    assert page.locator("#shipping_street").input_value() == "12 Bletchley Park"
    selected = line(page, 0).get_by_label("Item").evaluate("s => s.selectedOptions[0].text")
    assert selected == "Mechanical keyboard (89.90)"
    assert line(page, 0).get_by_label("Quantity").input_value() == "2"
    assert page.get_by_role("alert").first.is_visible()
    screenshot(page, output_dir, "03-order-form-with-error")

    quantity.fill("3")
    assert page.locator("[data-order-total]").inner_text() == "217.30"
    follow(page, page.get_by_role("button", name="Place order", exact=True))
    page.wait_for_url(re.compile(r".*/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("#order-total").inner_text() == "217.30"
    assert f"Order {order_id} placed." in page.get_by_role("status").first.inner_text()
    assert "Poll now" in page.locator("#next-steps").inner_text()
    screenshot(page, output_dir, "04-order-detail")
    document = requests.get(f"{system['order']}/api/orders/{order_id}", timeout=10).json()
    assert document["billing_address"] == document["shipping_address"] == {
        "street": "12 Bletchley Park", "zip": "MK3 6EB", "city": "Milton Keynes"}

    for service, noun, shot in (("invoicing", "invoice", 5), ("shipping", "shipment", 7)):
        follow(page, page.get_by_role("link", name=service.capitalize(), exact=True))
        assert page.url == system[service] + "/"
        follow(page, page.get_by_role("button", name="Poll now"))
        assert re.search(r"\b[1-9]\d* new\b", page.get_by_role("status").first.inner_text())
        screenshot(page, output_dir, f"0{shot}-{service}-list-after-poll-now")
        link = f"INV-{document['created'][:4]}-{order_id:06d}" if noun == "invoice" else f"Order {order_id}"
        follow(page, page.get_by_role("link", name=link, exact=True))
        assert page.url.endswith(f"/{noun}s/{order_id}")
        screenshot(page, output_dir, f"0{shot + 1}-{noun}-detail")
    follow(page, page.get_by_role("link", name="Orders", exact=True))
    assert page.get_by_role("link", name=f"Order {order_id}", exact=True).is_visible()
    screenshot(page, output_dir, "09-order-list")
    page.goto(f"{system['invoicing']}/invoices/{order_id}")
    assert "217.30" in page.locator("#invoice-total").inner_text()
    page.goto(f"{system['shipping']}/shipments/{order_id}")
    assert "Coffee mug" in page.locator("main").inner_text() and page.locator("#shipment-items").inner_text() == "5"


def test_without_javascript_lines_are_added_and_removed_by_the_server(new_page, system, output_dir):
    page = new_page(java_script_enabled=False)
    page.goto(system["order"] + "/orders/new")
    assert page.locator("#billing_street").is_visible(), "without JavaScript the billing fields are always shown"
    fill_shipping_address(page, street="7 Rue de Rivoli")
    line(page, 0).get_by_label("Item").select_option(label="Notebook (4.20)")
    line(page, 0).get_by_label("Quantity").fill("4")
    follow(page, page.get_by_role("button", name="Add line"))  # a real POST: the page comes back with two lines
    assert page.locator("[data-line]").count() == 2
    assert page.locator("#shipping_street").input_value() == "7 Rue de Rivoli"
    assert line(page, 0).get_by_label("Quantity").input_value() == "4"
    assert page.locator("[data-line-amount]").first.inner_text() == "16.80"
    line(page, 1).get_by_label("Item").select_option(label="Coffee mug (12.50)")
    line(page, 1).get_by_label("Quantity").fill("2")
    follow(page, page.get_by_role("button", name="Add line"))
    follow(page, page.get_by_role("button", name="Remove line 1"))  # drops the Notebook line, renumbers the rest
    assert page.locator("[data-line]").count() == 2
    assert line(page, 0).get_by_label("Item").evaluate("s => s.selectedOptions[0].text") == "Coffee mug (12.50)"
    assert line(page, 0).get_by_label("Quantity").input_value() == "2"
    screenshot(page, output_dir, "order-form-without-javascript")
    follow(page, page.get_by_role("button", name="Place order", exact=True))
    page.wait_for_url(re.compile(r".*/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    lines = requests.get(f"{system['order']}/api/orders/{order_id}", timeout=10).json()["lines"]
    ordered = [(line["item"]["name"], line["quantity"]) for line in lines]
    assert ordered == [("Coffee mug", 2), ("Mechanical keyboard", 1)]
    assert page.locator("#order-total").inner_text() == "114.90"


def test_the_feed_view_shows_each_page_and_walks_to_the_archives(browser_page, system, output_dir):
    # Up to a state where the current page holds exactly one entry (the newest) and an archive is full.
    newest = place_order_by_api(system["order"])
    while newest["id"] <= FEED_PAGE_SIZE or newest["id"] % FEED_PAGE_SIZE != 1:
        newest = place_order_by_api(system["order"])
    page = browser_page
    page.goto(system["order"] + "/")
    follow(page, page.get_by_role("link", name="order feed"))
    assert page.url == system["order"] + "/feed/view"
    assert page.get_by_role("link", name=f"Order {newest['id']}", exact=True).is_visible()
    screenshot(page, output_dir, "feed-view")
    follow(page, page.get_by_role("link", name="Older page"))
    assert re.search(r"/feed/view\?page=\d+$", page.url)
    assert "archive page" in page.locator("h1").inner_text()
    assert page.locator("tbody tr").count() == FEED_PAGE_SIZE
    atom = requests.get(system["order"] + page.get_by_role("link", name="This page as Atom").get_attribute("href"),
                        timeout=10)
    assert atom.headers["Content-Type"].startswith("application/atom+xml")
    screenshot(page, output_dir, "feed-view-archive")
    assert page.get_by_role("link", name=f"Order {newest['id'] - 1}", exact=True).is_visible()
    follow(page, page.get_by_role("link", name="Newer page"))
    assert page.url == system["order"] + "/feed/view"
    assert page.get_by_role("link", name=f"Order {newest['id']}", exact=True).is_visible()


def test_the_main_pages_fit_a_phone(new_page, system, output_dir):
    place_order_by_api(system["order"])
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    pages = [("order-form-phone", system["order"] + "/orders/new"), ("order-list-phone", system["order"] + "/"),
             ("order-detail-phone", system["order"] + "/orders/1"), ("invoicing-list-phone", system["invoicing"] + "/")]
    for name, url in pages:
        page.goto(url)
        if name == "order-form-phone":
            page.get_by_role("button", name="Add line").click()
        if name == "invoicing-list-phone":
            follow(page, page.get_by_role("button", name="Poll now"))
            assert page.locator("tbody tr").count() >= 1
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{url} scrolls sideways by {overflow}px on a phone"
        screenshot(page, output_dir, name)

"""The order form without JavaScript (remove line, same as shipping), the confirmation and the HTML feed view."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from order_service import create_app
from order_service.models import Order

FORM = {"customer_id": "1", "shipping_street": "1 Main St", "shipping_zip": "12345", "shipping_city": "Springfield",
        "billing_street": "", "billing_zip": "", "billing_city": "",
        "lines-0-item_id": "1", "lines-0-quantity": "2", "lines-1-item_id": "3", "lines-1-quantity": "5",
        "lines-2-item_id": "4", "lines-2-quantity": "7"}


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "FEED_PAGE_SIZE": 2,
                       "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"})


@pytest.fixture
def client(app):
    return app.test_client()


def orders_stored(app) -> int:
    with app.extensions["atomshop.db"].read() as s:
        return s.scalar(select(func.count()).select_from(Order))


def field_value(page: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', page)
    value = match and re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else None


def selected(page: str, name: str) -> str | None:
    select_html = re.search(rf'<select[^>]*name="{re.escape(name)}".*?</select>', page, re.S)
    option = select_html and re.search(r'<option[^>]*selected[^>]*value="(\d+)"', select_html.group(0))
    return option.group(1) if option else None


def test_remove_line_without_javascript_drops_that_line_renumbers_the_rest_and_stores_nothing(app, client):
    response = client.post("/orders", data={**FORM, "remove_line": "1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="lines-2-quantity"' not in page
    assert (selected(page, "lines-0-item_id"), field_value(page, "lines-0-quantity")) == ("1", "2")
    assert (selected(page, "lines-1-item_id"), field_value(page, "lines-1-quantity")) == ("4", "7")
    assert field_value(page, "shipping_city") == "Springfield"
    assert 'class="errors"' not in page  # not validated: nothing was submitted yet
    assert orders_stored(app) == 0


def test_the_last_line_cannot_be_removed(app, client):
    single = {k: v for k, v in FORM.items() if not k.startswith(("lines-1-", "lines-2-"))}
    page = client.post("/orders", data={**single, "remove_line": "0"}).get_data(as_text=True)
    assert page.count("data-line>") == 1 and 'name="lines-0-item_id"' in page  # a fresh line, as on a new form
    assert re.search(r'name="remove_line" value="0"[^>]*disabled', page)
    assert orders_stored(app) == 0


def test_same_as_shipping_copies_the_shipping_address_into_the_billing_address(app, client):
    response = client.post("/orders", data={**FORM, "same_as_shipping": "y"})
    assert response.status_code == 303
    document = client.get(f"/api/orders/{response.headers['Location'].rsplit('/', 1)[1]}").get_json()
    assert document["billing_address"] == {"street": "1 Main St", "zip": "12345", "city": "Springfield"}


def test_without_same_as_shipping_empty_billing_fields_are_errors_by_those_fields(app, client):
    response = client.post("/orders", data=FORM)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for name in ("billing_street", "billing_zip", "billing_city"):
        assert re.search(rf'<ul class="errors" id="{name}-errors"><li>.*Required', page)
        assert f'aria-describedby="{name}-errors"' in page
    assert 'href="#billing_street"' in page  # the summary at the top links to the field
    assert orders_stored(app) == 0


def test_with_same_as_shipping_a_missing_shipping_field_is_reported_once_on_the_shipping_side(app, client):
    page = client.post("/orders", data={**FORM, "same_as_shipping": "y", "shipping_zip": ""}).get_data(as_text=True)
    assert 'id="shipping_zip-errors"' in page and 'id="billing_zip-errors"' not in page


def test_the_new_form_ticks_same_as_shipping_and_prices_every_item(client):
    page = client.get("/orders/new").get_data(as_text=True)
    assert re.search(r'<input[^>]*checked[^>]*name="same_as_shipping"', page) or \
        re.search(r'<input[^>]*name="same_as_shipping"[^>]*checked', page)
    assert 'data-price="89.90"' in page and 'data-price="12.50"' in page
    assert re.search(r"<output data-order-total[^>]*>89.90</output>", page)  # one line of the first item


def test_the_confirmation_says_when_invoicing_and_shipping_pick_the_order_up(app, client, monkeypatch):
    location = client.post("/orders", data={**FORM, "same_as_shipping": "y"}).headers["Location"]
    page = client.get(location).get_data(as_text=True)
    assert "Order 1 placed." in page and "within 5 s" in page
    monkeypatch.setenv("POLL_INTERVAL", "2.5")
    assert "within 2.5 s" in client.get(location).get_data(as_text=True)
    monkeypatch.setenv("POLL_INTERVAL", "0")
    assert "Poll now" in client.get(location).get_data(as_text=True)
    assert 'href="http://127.0.0.1:8082/invoices/1"' in page and 'href="http://127.0.0.1:8083/shipments/1"' in page


def test_the_order_list_is_paged_with_page_numbers(app, client):
    for _ in range(3):
        client.post("/orders", data={**FORM, "same_as_shipping": "y"})
    page = client.get("/").get_data(as_text=True)
    assert "1–3 of 3 orders" in page
    assert client.get("/?page=2").status_code == 404 and client.get("/?page=x").status_code == 400


def test_the_feed_view_shows_the_current_page_and_walks_the_archives(app, client):
    assert "No entries yet" in client.get("/feed/view").get_data(as_text=True)
    for _ in range(5):
        client.post("/orders", data={**FORM, "same_as_shipping": "y"})
    current = client.get("/feed/view").get_data(as_text=True)  # page size 2: pages 1, 2 archived, 3 current
    assert ">Order 5</a>" in current and ">Order 4</a>" not in current
    assert 'rel="prev-archive" href="/feed/view?page=2"' in current and 'rel="next-archive"' not in current
    assert 'href="/feed"' in current
    archive = client.get("/feed/view?page=1").get_data(as_text=True)
    assert ">Order 1</a>" in archive and ">Order 2</a>" in archive and ">Order 3</a>" not in archive
    assert 'rel="next-archive" href="/feed/view?page=2"' in archive and 'rel="prev-archive"' not in archive
    assert 'href="/feed/pages/1"' in archive  # the same page as Atom
    assert 'rel="next-archive" href="/feed/view"' in client.get("/feed/view?page=2").get_data(as_text=True)
    assert client.get("/feed/view?page=4").status_code == 404
    assert client.get("/feed/view?page=0").status_code == 400
    assert 'href="/feed/view"' in client.get("/").get_data(as_text=True)


def test_the_feed_view_escapes_what_orders_carry(app, client):
    client.post("/orders", data={**FORM, "same_as_shipping": "y", "shipping_street": "<script>x</script>"})
    page = client.get("/feed/view").get_data(as_text=True)
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_behind_the_front_door_every_link_keeps_the_prefix(app, client):
    client.post("/orders", data={**FORM, "same_as_shipping": "y"})
    headers = {"X-Forwarded-Prefix": "/order"}
    for path in ("/", "/orders/new", "/orders/1", "/feed/view"):
        page = client.get(path, headers=headers).get_data(as_text=True)
        for link in re.findall(r'(?:href|src|action)="([^"#][^"]*)"', page):
            if not link.startswith("data:"):
                assert link.startswith(("/order/", "/invoicing/", "/shipping/")), f"{path} links {link}"


def test_billing_errors_name_the_billing_address_and_a_fractional_quantity_gets_one_error(client):
    page = client.post("/orders", data={**FORM, "lines-0-quantity": "2.5"}).get_data(as_text=True)
    summary = re.search(r'<div class="error-summary".*?</div>', page, re.S).group(0)
    assert "Billing street: Required." in summary and "Billing ZIP code: Required." in summary
    assert "Billing city: Required." in summary
    assert summary.count("Line 1, quantity") == 1 and "whole number from 1 to 9999" in summary
    errors = re.search(r'<ul class="errors" id="lines-0-quantity-errors">.*?</ul>', page, re.S).group(0)
    assert errors.count("<li>") == 1


def test_a_form_post_without_a_valid_csrf_token_shows_the_form_again_with_what_was_typed(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"})
    client = app.test_client()
    for token in ({}, {"csrf_token": "expired-or-forged"}):
        response = client.post("/orders", data={**FORM, **token})
        page = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "press Place order again" in page and "security token" in page
        assert field_value(page, "shipping_street") == "1 Main St"
        assert (selected(page, "lines-2-item_id"), field_value(page, "lines-2-quantity")) == ("4", "7")
        fresh = field_value(page, "csrf_token")
        assert fresh and fresh != token.get("csrf_token")
        assert orders_stored(app) == 0
    # The fresh token in that page works: submitting again places the order.
    again = client.post("/orders", data={**FORM, "same_as_shipping": "y", "csrf_token": fresh})
    assert again.status_code == 303 and orders_stored(app) == 1


@pytest.mark.parametrize("fields, complaint", [
    ({"lines-\u00b2-item_id": "1", "lines-\u00b2-quantity": "2"}, "not fields of this form"),
    ({f"lines-{'9' * 5000}-item_id": "1", f"lines-{'9' * 5000}-quantity": "2"}, "not fields of this form"),
    ({"remove_line": "\u00b2"}, "remove_line must be a line number"),
    ({"remove_line": "9" * 5000}, "remove_line must be a line number"),
])
def test_line_numbers_of_other_digits_or_thousands_of_them_are_a_400_saying_so_and_store_nothing(
        app, client, fields, complaint):
    # WTForms reads a line number with isdigit() then int(): "²" passes the one and breaks the other (a 500).
    response = client.post("/orders", data={**FORM, **fields})
    assert response.status_code == 400
    assert complaint in response.get_data(as_text=True)
    assert orders_stored(app) == 0

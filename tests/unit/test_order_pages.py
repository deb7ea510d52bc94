"""The order service's HTML pages: list, form (with CSRF), detail, error pages."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from order_service import create_app
from order_service.models import Notification, Order

FORM = {"customer_id": "2", "shipping_street": "1 Main St", "shipping_zip": "12345", "shipping_city": "Springfield",
        "billing_street": "2 Side St", "billing_zip": "54321", "billing_city": "Shelbyville",
        "lines-0-item_id": "1", "lines-0-quantity": "2", "lines-1-item_id": "4", "lines-1-quantity": "3"}


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"})


@pytest.fixture
def client(app):
    return app.test_client()


def stored(app):
    with app.extensions["atomshop.db"].read() as s:
        return s.scalar(select(func.count()).select_from(Order)), \
            s.scalar(select(func.count()).select_from(Notification))


def csrf_token(client) -> str:
    page = client.get("/orders/new").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def post_form(client, **fields):
    return client.post("/orders", data={**FORM, "csrf_token": csrf_token(client), **fields})


def test_the_form_has_labelled_fields_with_the_contract_names(client):
    page = client.get("/orders/new").get_data(as_text=True)
    for name in ("customer_id", "shipping_street", "shipping_zip", "shipping_city", "billing_street",
                 "billing_zip", "billing_city", "lines-0-item_id", "lines-0-quantity"):
        assert f'name="{name}"' in page
        assert f'<label for="{name}"' in page
    assert 'name="csrf_token"' in page


def test_a_valid_form_places_the_order_and_redirects_with_303(app, client):
    response = post_form(client)
    assert response.status_code == 303
    assert re.fullmatch(r"/orders/\d+", response.headers["Location"])
    detail = client.get(response.headers["Location"])
    assert detail.status_code == 200
    text = detail.get_data(as_text=True)
    assert "Springfield" in text and "Shelbyville" in text
    assert stored(app) == (1, 1)
    assert client.get(f"/api/orders/{response.headers['Location'].rsplit('/', 1)[1]}").get_json()["lines"][1][
        "quantity"] == 3


def test_a_form_post_without_the_csrf_token_is_rejected(app, client):
    response = client.post("/orders", data=FORM)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)  # the form again, as typed (test_order_ui.py)
    assert stored(app) == (0, 0)


@pytest.mark.parametrize("fields, field, message", [
    ({"shipping_street": ""}, "shipping_street", "Required"),
    ({"billing_city": "x" * 201}, "billing_city", "200"),
    ({"shipping_zip": "a\x00b"}, "shipping_zip", "not allowed"),
    ({"lines-0-quantity": "0"}, "lines-0-quantity", "1 to 9999"),
    ({"lines-0-quantity": "1.5"}, "lines-0-quantity", "whole number"),
    ({"lines-1-quantity": "10000"}, "lines-1-quantity", "1 to 9999"),
    ({"lines-0-item_id": "999"}, "lines-0-item_id", "Not a valid choice"),
    ({"customer_id": "999"}, "customer_id", "Not a valid choice"),
])
def test_an_invalid_form_is_shown_again_with_422_errors_next_to_fields_and_values_kept(app, client, fields,
                                                                                        field, message):
    response = post_form(client, **fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    errors = re.search(rf'<ul class="errors" id="{field}-errors">(.*?)</ul>', page, re.S)
    assert errors and message in errors.group(1), page
    assert 'value="Shelbyville"' in page or fields.get("billing_city")
    assert stored(app) == (0, 0)


def test_hostile_strings_are_escaped_in_the_html(app, client):
    hostile = '<script>alert(1)</script>]]>'
    response = post_form(client, shipping_street=hostile, shipping_city="x" * 201)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;]]&gt;" in page
    placed = post_form(client, shipping_street=hostile)
    detail = client.get(placed.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)" not in detail and "&lt;script&gt;" in detail
    assert "<script>alert(1)" not in client.get("/").get_data(as_text=True)


def test_add_line_shows_one_more_line_and_keeps_what_was_entered(app, client):
    response = post_form(client, add_line="Add line")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'name="lines-2-item_id"' in page and 'name="lines-2-quantity"' in page
    assert 'value="Springfield"' in page
    assert stored(app) == (0, 0)


def test_the_home_page_lists_orders_newest_first_and_links_the_form_and_feed(client):
    first = post_form(client).headers["Location"]
    second = post_form(client).headers["Location"]
    page = client.get("/").get_data(as_text=True)
    assert page.index(f'href="{second}"') < page.index(f'href="{first}"')
    assert 'href="/orders/new"' in page and 'href="/feed"' in page


def test_unknown_pages_get_a_plain_html_404(client):
    for path in ("/orders/999", "/nothing", "/orders/abc"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "Traceback" not in response.get_data(as_text=True)

"""The order service's JSON API: demo data, placing orders, validation, errors."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from common.service.db import Database
from order_service import create_app
from order_service.models import Base, Customer, Item, Notification, Order
from tests.unit.test_feed_http import order_body


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'orders.db'}"


@pytest.fixture
def app(db_url):
    return create_app({"TESTING": True, "DATABASE_URL": db_url})


@pytest.fixture
def client(app):
    return app.test_client()


def counts(db_url):
    db = Database(db_url, Base)
    try:
        with db.read() as s:
            return s.scalar(select(func.count()).select_from(Order)), \
                s.scalar(select(func.count()).select_from(Notification))
    finally:
        db.dispose()


def test_demo_customers_and_items_are_there_on_first_start_and_not_duplicated(db_url, client):
    customers = client.get("/api/customers").get_json()
    items = client.get("/api/items").get_json()
    assert len(customers) >= 3 and len(items) >= 3
    assert set(customers[0]) == {"id", "first_name", "last_name", "email"}
    assert set(items[0]) == {"id", "name", "price"}
    assert all(Decimal(i["price"]).as_tuple().exponent == -2 and isinstance(i["price"], str) for i in items)
    create_app({"TESTING": True, "DATABASE_URL": db_url})  # a restart
    db = Database(db_url, Base)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == len(customers)
        assert s.scalar(select(func.count()).select_from(Item)) == len(items)
    db.dispose()


def test_an_order_is_created_with_201_a_location_and_the_order_document(db_url, client):
    items = {i["id"]: i for i in client.get("/api/items").get_json()}
    response = client.post("/api/orders", json=order_body())
    assert response.status_code == 201
    document = response.get_json()
    assert response.headers["Location"] == f"/api/orders/{document['id']}"
    assert set(document) == {"id", "created", "customer", "shipping_address", "billing_address", "lines", "total"}
    assert document["customer"]["id"] == 1
    assert document["shipping_address"] == order_body()["shipping_address"]
    assert document["lines"] == [{"item": items[1], "quantity": 2}, {"item": items[3], "quantity": 1}]
    expected = Decimal(items[1]["price"]) * 2 + Decimal(items[3]["price"])
    assert document["total"] == f"{expected:.2f}"
    assert document["created"].endswith("Z") and "T" in document["created"]
    assert client.get(response.headers["Location"]).get_json() == document
    assert counts(db_url) == (1, 1)


def test_the_line_price_is_the_price_at_order_time(app, client):
    first = client.post("/api/orders", json=order_body()).get_json()
    db = app.extensions["atomshop.db"]
    with db.write() as s:
        s.get(Item, 1).price = Decimal("1000.00")
    again = client.get(f"/api/orders/{first['id']}").get_json()
    assert again["lines"][0]["item"]["price"] == first["lines"][0]["item"]["price"] != "1000.00"


def without(key):
    body = order_body()
    del body[key]
    return body


def with_address(**parts):
    return order_body(shipping_address={**order_body()["shipping_address"], **parts})


def with_line(**line):
    return order_body(lines=[{"item_id": 1, "quantity": 1, **line}])


INVALID = {
    "unknown customer": (order_body(customer_id=999), "customer_id"),
    "customer id as string": (order_body(customer_id="1"), "customer_id"),
    "customer id as bool": (order_body(customer_id=True), "customer_id"),
    "no customer": (without("customer_id"), "customer_id"),
    "no shipping address": (without("shipping_address"), "shipping_address"),
    "billing address not an object": (order_body(billing_address="x"), "billing_address"),
    "empty street": (with_address(street=""), "shipping_address.street"),
    "blank city": (with_address(city="   "), "shipping_address.city"),
    "missing zip": (order_body(shipping_address={"street": "s", "city": "c"}), "shipping_address.zip"),
    "zip a number": (with_address(zip=12345), "shipping_address.zip"),
    "street too long": (with_address(street="x" * 201), "shipping_address.street"),
    "no lines": (order_body(lines=[]), "lines"),
    "lines not a list": (order_body(lines={"item_id": 1}), "lines"),
    "line not an object": (order_body(lines=[1]), "lines[0]"),
    "unknown item": (with_line(item_id=999), "lines[0].item_id"),
    "item id as float": (with_line(item_id=1.0), "lines[0].item_id"),
    "quantity 0": (with_line(quantity=0), "lines[0].quantity"),
    "quantity 10000": (with_line(quantity=10000), "lines[0].quantity"),
    "quantity negative": (with_line(quantity=-1), "lines[0].quantity"),
    "quantity 1.5": (with_line(quantity=1.5), "lines[0].quantity"),
    "quantity 2.0": (with_line(quantity=2.0), "lines[0].quantity"),
    "quantity as string": (with_line(quantity="2"), "lines[0].quantity"),
    "quantity as bool": (with_line(quantity=True), "lines[0].quantity"),
    "quantity missing": (order_body(lines=[{"item_id": 1}]), "lines[0].quantity"),
    "NUL in street": (with_address(street="a\x00b"), "shipping_address.street"),
    "control char in city": (with_address(city="a\x1bb"), "shipping_address.city"),
    "lone surrogate": (with_address(street="a\ud800b"), "shipping_address.street"),
    "U+FFFE": (with_address(zip="\ufffe"), "shipping_address.zip"),
    "U+FFFF in an unknown field": (order_body(note="\uffff"), "note"),
    "not an object": ([order_body()], "body"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_order_is_rejected_with_422_saying_what_is_wrong_and_nothing_is_stored(db_url, client, case):
    body, field = INVALID[case]
    response = client.post("/api/orders", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert error["error"] and field in error["details"], error
    assert counts(db_url) == (0, 0)


def test_an_unknown_customer_and_every_unknown_item_are_all_told_at_once(db_url, client):
    body = order_body(customer_id=999, lines=[{"item_id": 998, "quantity": 1}, {"item_id": 1, "quantity": 2},
                                              {"item_id": 997, "quantity": 1}, {"item_id": 998, "quantity": 3}])
    response = client.post("/api/orders", json=body)
    assert response.status_code == 422
    assert response.get_json()["details"] == {
        "customer_id": "no customer with id 999", "lines[0].item_id": "no item with id 998",
        "lines[2].item_id": "no item with id 997", "lines[3].item_id": "no item with id 998"}
    assert counts(db_url) == (0, 0)


def test_an_order_naming_one_item_twice_has_a_line_for_each(client):
    items = {i["id"]: i for i in client.get("/api/items").get_json()}
    body = order_body(lines=[{"item_id": 2, "quantity": 1}, {"item_id": 2, "quantity": 4}])
    document = client.post("/api/orders", json=body).get_json()
    assert [(line["item"], line["quantity"]) for line in document["lines"]] == [(items[2], 1), (items[2], 4)]
    assert Decimal(document["total"]) == 5 * Decimal(items[2]["price"])


def test_orders_written_in_one_transaction_each_get_their_own_outcome(db_url, app):
    """What a shared write (group commit) stores: the valid orders with gap-free positions, nothing of an invalid
    one (on PostgreSQL the checks run in the shared transaction), each told its own outcome."""
    from order_service.orders import INTAKE_KEY, InvalidOrder, OrderRequest

    intake = app.extensions[INTAKE_KEY]
    address = {"street": "1 Main St", "zip": "12345", "city": "Springfield"}
    good, bad = OrderRequest(1, address, address, [(1, 2)]), OrderRequest(999, address, address, [(1, 1)])
    with intake.db.write() as session:
        outcomes = intake._store(session, [good, bad, good])
    assert isinstance(outcomes[1], InvalidOrder) and "customer_id" in outcomes[1].errors
    assert [o["id"] for o in (outcomes[0], outcomes[2])] == [1, 2]
    db = Database(db_url, Base)
    with db.read() as s:
        notes = list(s.scalars(select(Notification).order_by(Notification.position)))
        assert [(n.position, json.loads(n.document)) for n in notes] == [(1, outcomes[0]), (2, outcomes[2])]
        assert s.scalar(select(func.count()).select_from(Order)) == 2
    db.dispose()


def test_valid_boundaries_are_accepted(client):
    for body in (with_line(quantity=1), with_line(quantity=9999), with_address(street="x" * 200),
                 with_address(street="tab\tnew\nline\rok")):
        assert client.post("/api/orders", json=body).status_code == 201


@pytest.mark.parametrize("data, content_type, status", [
    ('{"customer_id": 1,', "application/json", 400),
    (b"\xff\xfe\xfa", "application/json", 400),
    ("", "application/json", 400),
    ("[" * 100_000 + "]" * 100_000, "application/json", 400),
    (json.dumps(order_body()), "text/plain", 415),
    (json.dumps(order_body()), None, 415),
    ("customer_id=1", "application/x-www-form-urlencoded", 415),
])
def test_a_body_that_is_not_json_gets_a_json_error(db_url, client, data, content_type, status):
    response = client.post("/api/orders", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.is_json and response.get_json()["error"]
    assert counts(db_url) == (0, 0)


def test_a_body_over_one_mebibyte_gets_413_as_json(db_url, client):
    body = json.dumps(order_body(padding="x" * (1024 * 1024)))
    response = client.post("/api/orders", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]
    assert counts(db_url) == (0, 0)


def test_unknown_orders_and_methods_get_json_errors(client):
    for path, method, status in [("/api/orders/999", "get", 404), ("/api/orders/abc", "get", 404),
                                 ("/api/nothing", "get", 404), ("/api/orders", "put", 405),
                                 ("/api/orders/1", "delete", 405)]:
        response = getattr(client, method)(path)
        assert response.status_code == status
        assert response.is_json and response.get_json()["error"], path


def test_health_reports_ok_the_feed_position_and_each_followed_feed(client):
    health = client.get("/health").get_json()
    assert {"status": "ok", "service": "order", "feed_position": 0}.items() <= health.items()
    assert set(health["feeds"]) == {"invoicing", "shipping"}
    assert all(feed["position"] == 0 for feed in health["feeds"].values())
    client.post("/api/orders", json=order_body())
    assert client.get("/health").get_json()["feed_position"] == 1


def test_the_api_needs_no_csrf_token_even_with_csrf_enabled(app, client):
    assert app.config.get("WTF_CSRF_ENABLED", True)
    assert client.post("/api/orders", json=order_body()).status_code == 201


@pytest.mark.parametrize("field", ["customer_id", "item_id"])
def test_an_id_beyond_64_bits_is_rejected_with_422_not_a_server_error(db_url, client, field):
    body = order_body()
    if field == "customer_id":
        body["customer_id"] = 2**63
    else:
        body["lines"][0]["item_id"] = 2**63
    response = client.post("/api/orders", json=body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert counts(db_url) == (0, 0)


@pytest.mark.parametrize("path", ["/api/orders/9223372036854775808", "/orders/99999999999999999999999",
                                  "/api/orders/0"])
def test_an_order_id_no_database_can_hold_answers_404(client, path):
    assert client.get(path).status_code == 404


def test_orders_are_listed_newest_first_in_pages_linked_by_link_headers(tmp_path):
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}",
                         "API_PER_PAGE": 2}).test_client()
    empty = client.get("/api/orders")
    assert empty.status_code == 200 and empty.get_json() == []
    ids = [client.post("/api/orders", json=order_body()).get_json()["id"] for _ in range(5)]
    first = client.get("/api/orders")
    assert [o["id"] for o in first.get_json()] == ids[::-1][:2]
    assert first.get_json()[0] == client.get(f"/api/orders/{ids[-1]}").get_json()
    links = requests.utils.parse_header_links(first.headers["Link"])
    assert {link["rel"]: link["url"] for link in links} == {
        "first": "http://localhost/api/orders?page=1", "next": "http://localhost/api/orders?page=2",
        "last": "http://localhost/api/orders?page=3"}
    last = client.get("/api/orders?page=3")
    assert [o["id"] for o in last.get_json()] == [ids[0]]
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    assert client.get("/api/orders?page=4").status_code == 404
    assert client.get("/api/orders?page=x").status_code == 400

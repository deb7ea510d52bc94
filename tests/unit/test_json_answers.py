"""Every service's JSON answers end with a newline, and /health reads the same way on every service."""
from __future__ import annotations

import pytest

from invoicing_service.app import create_app as create_invoicing
from order_service import create_app as create_order
from shipping_service.app import create_app as create_shipping
from tests.unit.test_feed_http import order_body

SERVICES = {"order": create_order, "invoicing": create_invoicing, "shipping": create_shipping}


@pytest.fixture(params=sorted(SERVICES))
def client(request, tmp_path):
    app = SERVICES[request.param]({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
                                   "ORDER_FEED_URL": "http://127.0.0.1:9/feed", "POLL_INTERVAL": 0})
    return app.test_client()


@pytest.mark.parametrize("method, path", [("get", "/health"), ("get", "/api/nope"), ("put", "/api/orders"),
                                         ("get", "/api/orders"), ("get", "/api/invoices"),
                                         ("get", "/api/shipments"), ("get", "/api/dead-letters")])
def test_json_answers_end_with_a_newline(client, method, path):
    response = getattr(client, method)(path)
    if response.mimetype == "application/json":
        assert response.data.endswith(b"\n"), (path, response.data[-20:])


def test_health_starts_with_status_and_service_and_has_one_dead_letter_key(client):
    health = client.get("/health").get_json()
    assert list(health)[:2] == ["status", "service"]
    assert "dead_lettered" not in health and "dead_lettered" not in str(health.get("feeds", {}))
    if "consumer" in health:
        assert health["dead_letters"] == 0
        keys = list(health)
        assert keys.index("last_poll") < keys.index("problem") < keys.index("last_error")


@pytest.mark.parametrize("method, path", [("post", "/health"), ("get", "/poll"), ("delete", "/api/dead-letters"),
                                          ("post", "/api/invoices"), ("post", "/api/shipments"),
                                          ("delete", "/api/orders/1")])
def test_a_wrong_method_answers_405_in_json_naming_the_allowed_ones(client, method, path):
    response = getattr(client, method)(path)
    if response.status_code == 404:  # a route of another service
        return
    assert response.status_code == 405 and response.mimetype == "application/json", (path, response.status_code)
    assert "error" in response.get_json()
    assert response.headers.get("Allow"), f"{method.upper()} {path}: a 405 must say what is allowed (RFC 9110)"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_database_gone_answers_503_saying_so_not_an_unexpected_500(tmp_path, service):
    import shutil

    home = tmp_path / "data"
    home.mkdir()
    app = SERVICES[service]({"TESTING": True, "DATABASE_URL": f"sqlite:///{home / 'db.sqlite'}",
                             "ORDER_FEED_URL": "http://127.0.0.1:9/feed", "POLL_INTERVAL": 0})
    app.extensions["atomshop.db"].engine.dispose()
    shutil.rmtree(home)  # no connection can be opened any more
    client = app.test_client()
    asks = {"order": [("post", "/api/orders"), ("get", "/api/orders/1"), ("get", "/feed")],
            "invoicing": [("get", "/api/invoices"), ("get", "/feed")],
            "shipping": [("get", "/api/shipments/1"), ("get", "/feed")]}[service]
    for method, path in asks:
        response = getattr(client, method)(path, json=order_body() if method == "post" else None)
        assert response.status_code == 503, (path, response.status_code, response.data[:200])
        assert response.get_json()["error"] == "this service's database is not available; try again shortly"
        assert response.headers["Retry-After"] == "5"
    page = client.get("/")
    assert page.status_code == 503 and page.mimetype == "text/html"  # people get a page

"""The consumer services' HTTP surface: /poll, /health, JSON API, dead letters, HTML pages."""
from __future__ import annotations

import re
import shutil

import pytest
import requests
import responses

from invoicing_service.app import create_app as create_invoicing
from shipping_service.app import create_app as create_shipping
from tests.unit.follower_feed import FEED_URL, FakeFeed, entry_xml, order_document


@pytest.fixture(params=["invoicing", "shipping"])
def app(request, tmp_path):
    factory = create_invoicing if request.param == "invoicing" else create_shipping
    app = factory({"ORDER_FEED_URL": FEED_URL, "TESTING": True})
    app.kind = request.param
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def feed():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeFeed(rsps, size=3, count=5)


def plural(app):
    return "invoices" if app.kind == "invoicing" else "shipments"


def test_poll_handles_the_feed_and_answers_how_many(client, feed):
    assert client.post("/poll").get_json()["processed"] == 5
    assert client.post("/poll").get_json() == {"processed": 0, "position": 5, "last_error": None, "caught_up": True}
    feed.count = 7
    assert client.post("/poll").get_json()["processed"] == 2


def test_the_json_api_lists_records_by_order_id_and_404s_unknown_ones(app, client, feed):
    client.post("/poll")
    records = client.get(f"/api/{plural(app)}").get_json()
    assert [r["order_id"] for r in records] == [1, 2, 3, 4, 5]
    one = client.get(f"/api/{plural(app)}/3")
    assert one.status_code == 200 and one.get_json() == records[2]
    if app.kind == "invoicing":
        assert one.get_json()["total"] == "43.00" and one.get_json()["billing_address"]["city"] == "Shelbyville"
    else:
        assert one.get_json()["shipping_address"]["city"] == "Springfield"
    for missing in ("/api/{}/99", "/api/{}/abc", "/api/{}/9223372036854775808"):
        response = client.get(missing.format(plural(app)))
        assert response.status_code == 404 and "error" in response.get_json()


def test_health_shows_feed_position_last_poll_and_counters(client, feed):
    health = client.get("/health").get_json()
    assert health["status"] == "ok" and health["position"] == 0 and health["last_poll"] is None
    assert health["feed_url"] == FEED_URL
    client.post("/poll")
    health = client.get("/health").get_json()
    assert health["position"] == 5 and health["handled"] == 5 and health["last_error"] is None
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", health["last_poll"])
    assert health["skipped"] == 0 and health["dead_letters"] == 0


def test_an_unreachable_feed_answers_502_and_shows_in_health(tmp_path):
    app = create_invoicing({"ORDER_FEED_URL": FEED_URL})
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED_URL, body=requests.ConnectionError(ConnectionRefusedError(111, "refused")))
        response = app.test_client().post("/poll")
    assert response.status_code == 502 and "connection refused" in response.get_json()["detail"]
    assert re.fullmatch(r"The order feed at http://orders\.test/feed is not answering \(connection refused\) "
                        r"since \d\d:\d\d:\d\d UTC; next try in 5 s\.", response.get_json()["error"])
    health = app.test_client().get("/health").get_json()
    assert health["status"] == "ok" and "connection refused" in health["last_error"]
    assert health["problem"] == response.get_json()["error"]


def test_a_database_gone_answers_503_with_a_sentence_and_the_technical_text_apart(tmp_path, feed):
    home = tmp_path / "data"
    home.mkdir()
    app = create_invoicing({"ORDER_FEED_URL": FEED_URL, "DATABASE_URL": f"sqlite:///{home / 'invoicing.db'}"})
    app.extensions["atomshop.db"].engine.dispose()
    shutil.rmtree(home)  # its folder gone: no connection can be opened
    response = app.test_client().post("/poll")
    body = response.get_json()
    assert response.status_code == 503
    assert body["error"] == "this service's database is not available; ask again once it is back"
    assert "OperationalError" in body["detail"] and "unable to open database file" in body["detail"]


def test_a_broken_feed_answers_502(client):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, FEED_URL, body="<feed><entry>")
        response = client.post("/poll")
    assert response.status_code == 502 and "ill-formed" in response.get_json()["detail"]
    assert "cannot be read (a page is not well-formed XML)" in response.get_json()["error"]


def test_dead_letters_are_listed_shown_and_can_be_retried(app, client, feed):
    feed.entry_overrides[2] = entry_xml(2, content='{"id": 2}')
    for _ in range(3):
        client.post("/poll")
    [letter] = client.get("/api/dead-letters").get_json()
    assert letter["position"] == 2 and "missing field" in letter["reason"]
    assert client.get("/health").get_json()["dead_letters"] == 1
    page = client.get("/dead-letters").get_data(as_text=True)
    assert "missing field" in page and "Retry" in page
    failed = client.post(f"/api/dead-letters/{letter['id']}/retry")
    assert failed.status_code == 422 and "missing field" in failed.get_json()["error"]
    assert client.post("/api/dead-letters/999/retry").status_code == 404
    # Fix the stored content as an operator would, then retry.
    follower = app.extensions["atomshop.follower"]
    D = follower.models.DeadLetter
    import json
    with follower.db.write() as s:
        s.get(D, letter["id"]).content = json.dumps(order_document(2))
    ok = client.post(f"/api/dead-letters/{letter['id']}/retry")
    assert ok.status_code == 200 and client.get("/api/dead-letters").get_json() == []
    assert client.get(f"/api/{plural(app)}/2").status_code == 200


def test_pages_list_and_show_records_with_a_link_back_to_the_order_and_escape_hostile_text(app, client):
    doc = order_document(1, street="<script>alert(1)</script>")
    doc["billing_address"]["street"] = "<script>alert(2)</script>"
    doc["customer"]["first_name"] = "<img src=x>"
    import json
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        feed = FakeFeed(rsps, size=3, count=1)
        feed.entry_overrides[1] = entry_xml(1, content=json.dumps(doc))
        client.post("/poll")
    listing = client.get("/").get_data(as_text=True)
    detail = client.get(f"/{plural(app)}/1").get_data(as_text=True)
    for html in (listing, detail):
        assert "<script>" not in html and "<img src=x>" not in html and "&lt;img src=x&gt;" in html
    assert 'href="http://orders.test/orders/1"' in detail
    # The order page's timeline is the trace of the order across the services.
    assert re.search(r'<a class="trace-link" href="http://orders.test/orders/1#timeline">Trace of this order</a>',
                     detail)
    assert "Poll now" in listing
    assert client.get(f"/{plural(app)}/42").status_code == 404


def test_the_poll_now_button_is_csrf_protected_and_polls(app, client, feed):
    assert client.post("/poll-now").status_code == 400  # no CSRF token
    html = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/poll-now", data={"csrf_token": token}, headers={"Referer": "http://localhost/"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Polled the order feed: 5 new entries handled." in client.get("/").get_data(as_text=True)


def test_behind_the_front_door_poll_now_leads_back_to_the_page_under_the_prefix(app, client, feed):
    door = {"X-Forwarded-Prefix": "/" + app.kind, "X-Forwarded-Host": "shop.example", "X-Forwarded-Proto": "https"}
    html = client.get("/", headers=door).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert f'action="/{app.kind}/poll-now"' in html
    came_from = f"https://shop.example/{app.kind}/{plural(app)}/1"
    response = client.post("/poll-now", data={"csrf_token": token}, headers={**door, "Referer": came_from})
    assert response.headers["Location"] == f"/{app.kind}/{plural(app)}/1"
    # A page of another service on the same host is not this service's to go back to.
    elsewhere = client.post("/poll-now", data={"csrf_token": token},
                            headers={**door, "Referer": "https://shop.example/order/orders/1"})
    assert elsewhere.headers["Location"] == f"/{app.kind}/"
    # Over HTTPS, Flask-WTF refuses a form posted from another site altogether.
    foreign = client.post("/poll-now", data={"csrf_token": token}, headers={**door, "Referer": "https://evil.example/"})
    assert foreign.status_code == 400


def test_poll_interval_and_feed_url_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ORDER_FEED_URL", "http://feed.example/feed")
    monkeypatch.setenv("POLL_INTERVAL", "0.5")
    app = create_shipping()
    assert app.config["ORDER_FEED_URL"] == "http://feed.example/feed" and app.config["POLL_INTERVAL"] == 0.5
    monkeypatch.delenv("ORDER_FEED_URL")
    monkeypatch.delenv("POLL_INTERVAL")
    app = create_shipping()
    assert app.config["ORDER_FEED_URL"] == "http://127.0.0.1:8081/feed" and app.config["POLL_INTERVAL"] == 5.0
    assert app.extensions["atomshop.background"]  # the poller, started only by common.service.cli.serve
    monkeypatch.setenv("POLL_INTERVAL", "0")
    assert create_shipping().extensions["atomshop.background"] == []  # POST /poll only: no worker limit

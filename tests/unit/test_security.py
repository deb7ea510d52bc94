"""Trust boundaries of every service (issue 10): credentials, cross-site requests, browser headers, links, redirects."""
from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import responses
from sqlalchemy import select, update

from common.service.db import get_db
from invoicing_service.app import create_app as create_invoicing
from invoicing_service.models import Invoice
from invoicing_service.models import tracking as invoicing_tracking
from order_service import create_app as create_order
from shipping_service.app import create_app as create_shipping
from shipping_service.models import Shipment
from shipping_service.models import tracking as shipping_tracking
from tests.unit.follower_feed import FEED_URL, FakeFeed

TOKEN = "feed-token-0123456789abcdef"
PASSWORD = "correct horse battery staple"
XSS = "javascript:alert(document.domain)//"
ORDER = {"customer_id": 1, "shipping_address": {"street": "1 Main St", "zip": "12345", "city": "Springfield"},
         "billing_address": {"street": "2 Side St", "zip": "54321", "city": "Shelbyville"},
         "lines": [{"item_id": 1, "quantity": 2}]}
CONSUMERS = {"invoicing": (create_invoicing, Invoice, invoicing_tracking, "invoices"),
             "shipping": (create_shipping, Shipment, shipping_tracking, "shipments")}


def basic(user: str = "admin", password: str = PASSWORD) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def order_app(tmp_path):
    return create_order({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                         "FEED_PAGE_SIZE": 2, "FEED_TOKEN": TOKEN, "ADMIN_PASSWORD": PASSWORD})


@pytest.fixture
def order_client(order_app):
    client = order_app.test_client()
    for _ in range(3):  # page 1 becomes an archive
        assert client.post("/api/orders", json=ORDER, headers=basic()).status_code == 201
    return client


@pytest.fixture(params=sorted(CONSUMERS))
def consumer(request, tmp_path):
    factory, model, tracking, plural = CONSUMERS[request.param]
    app = factory({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'consumer.db'}",
                   "ORDER_FEED_URL": FEED_URL, "WTF_CSRF_ENABLED": False})
    app.factory, app.model, app.tracking, app.plural = factory, model, tracking, plural
    return app


# ---- credentials ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/feed", "/feed/pages/1"])
def test_every_feed_url_answers_401_without_the_feed_token_and_200_with_it(order_client, path):
    refused = order_client.get(path)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    assert b"<entry" not in refused.data
    assert order_client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert order_client.get(path, headers={"Authorization": TOKEN}).status_code == 401  # no scheme
    allowed = order_client.get(path, headers=BEARER)
    assert allowed.status_code == 200 and b"<entry" in allowed.data


def test_the_document_an_entry_links_to_accepts_the_feed_token_or_the_admin_password(order_client):
    assert order_client.get("/api/orders/1").status_code == 401
    assert order_client.get("/api/orders/1", headers=BEARER).get_json()["id"] == 1
    assert order_client.get("/api/orders/1", headers=basic()).get_json()["id"] == 1


@pytest.mark.parametrize("path", ["/", "/orders/new", "/orders/1", "/feed/view", "/api/customers", "/api/items",
                                  "/schemas/OrderCreated.json", "/no-such-page"])
def test_pages_and_the_json_api_answer_401_without_the_admin_password(order_client, path):
    refused = order_client.get(path)
    assert refused.status_code == 401
    assert 'Basic realm="atomshop"' in refused.headers["WWW-Authenticate"]
    assert b"@example" not in refused.data  # no customer e-mail leaks into the refusal
    for wrong in (basic(password="wrong"), basic(user="root"), {"Authorization": "Basic !!notbase64"}):
        assert order_client.get(path, headers=wrong).status_code == 401
    if path != "/feed/view":  # the feed token opens feeds and documents only, not the pages people read
        assert order_client.get(path, headers=BEARER).status_code == 401
    assert order_client.get(path, headers=basic()).status_code == (404 if path == "/no-such-page" else 200)


def test_placing_an_order_needs_the_admin_password(order_app):
    client = order_app.test_client()
    assert client.post("/api/orders", json=ORDER).status_code == 401
    assert client.post("/api/orders", json=ORDER, headers=BEARER).status_code == 401
    assert client.get("/api/orders/1", headers=basic()).status_code == 404  # nothing stored
    assert client.post("/api/orders", json=ORDER, headers=basic()).status_code == 201


@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_health_and_metrics_stay_open(order_client, path):
    assert order_client.get(path).status_code != 401


def test_operator_actions_and_consumer_pages_need_the_admin_password(consumer):
    consumer.config.update(FEED_TOKEN=TOKEN, ADMIN_PASSWORD=PASSWORD)
    client = consumer.test_client()
    for method, path in [("post", "/poll"), ("post", "/poll-now"), ("post", "/api/dead-letters/1/retry"),
                         ("post", "/dead-letters/1/retry"), ("get", "/"), ("get", "/dead-letters"),
                         ("get", "/api/dead-letters"), ("get", f"/api/{consumer.plural}")]:
        assert getattr(client, method)(path).status_code == 401, path
        assert getattr(client, method)(path, headers=BEARER).status_code == 401, path
    assert client.post("/api/dead-letters/1/retry", headers=basic()).status_code == 404
    assert client.get("/health").status_code == 200


def test_unset_secrets_leave_everything_open_as_before(tmp_path):
    client = create_order({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}"}).test_client()
    assert client.post("/api/orders", json=ORDER).status_code == 201
    for path in ("/", "/feed", "/api/orders/1", "/api/customers"):
        assert client.get(path).status_code == 200, path


def test_a_follower_sends_the_feed_token(consumer):
    app = consumer.factory({"TESTING": True, "DATABASE_URL": consumer.config["DATABASE_URL"],
                            "ORDER_FEED_URL": FEED_URL, "FEED_TOKEN": TOKEN})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        feed = FakeFeed(rsps, size=3, count=5)
        assert app.test_client().post("/poll").get_json()["processed"] == 5
        # responses records every request of the process while active, a follower thread left by another test
        # among them (without this token): this follower's are the ones that carry it.
        mine = [c for c in rsps.calls if c.request.headers.get("Authorization") == f"Bearer {TOKEN}"]
        assert {urlsplit(c.request.url).path for c in mine} >= {"/feed", "/feed/pages/1"}  # current and archive
        assert all(c.request.url in {url for url, _ in feed.requests} for c in mine)  # to the feed, nowhere else


def test_without_a_feed_token_a_follower_sends_no_authorization(consumer):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeFeed(rsps, size=3, count=2)
        assert consumer.test_client().post("/poll").get_json()["processed"] == 2
        assert rsps.calls and all("Authorization" not in c.request.headers for c in rsps.calls)


# ---- cross-site requests --------------------------------------------------------------------------------------

@pytest.fixture
def open_order_app(tmp_path):
    return create_order({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"})


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://localhost:8082"}, {"Origin": "https://localhost"},
                                     {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"}])
def test_a_state_changing_request_a_browser_sends_from_another_site_is_refused_with_403(open_order_app, headers):
    client = open_order_app.test_client()
    response = client.post("/api/orders", json=ORDER, headers=headers)
    assert response.status_code == 403 and "cross-site" in response.get_json()["error"]
    assert client.post("/orders", data={"customer_id": "1"}, headers=headers).status_code == 403
    assert client.put("/api/orders", json=ORDER, headers=headers).status_code == 403
    assert client.get("/api/orders/1").status_code == 404  # nothing stored


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost"}, {"Origin": "http://localhost:80"},
                                     {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
                                     {"Sec-Fetch-Site": "none"}])
def test_same_origin_requests_and_programs_that_send_neither_header_are_served(open_order_app, headers):
    assert open_order_app.test_client().post("/api/orders", json=ORDER, headers=headers).status_code == 201


def test_a_cross_site_get_is_served(open_order_app):
    assert open_order_app.test_client().get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_operator_actions_refuse_cross_site_posts(consumer):
    client = consumer.test_client()
    for path in ("/poll", "/poll-now", "/api/dead-letters/1/retry", "/dead-letters/1/retry"):
        assert client.post(path, headers={"Origin": "http://evil.example"}).status_code == 403, path
        assert client.post(path, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403, path


# ---- browser headers, inline script, cookies ------------------------------------------------------------------

class _InlineScript(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        self.problems += [f"<{tag} {name}=…>" for name in names if name.startswith("on") or name == "style"]
        self.problems += [f"<{tag} href={v}>" for n, v in attrs if n in ("href", "src") and v
                          and v.strip().lower().startswith("javascript:")]
        self._in_script = tag == "script" and not names.get("src")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("inline <script>")


def assert_browser_safe(response):
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    parser = _InlineScript()
    parser.feed(response.get_data(as_text=True))
    assert parser.problems == []


def test_order_pages_carry_csp_nosniff_and_referrer_policy_and_no_inline_script(open_order_app):
    client = open_order_app.test_client()
    assert client.post("/api/orders", json=ORDER).status_code == 201
    for path in ("/", "/orders/new", "/orders/1", "/feed/view", "/orders/999"):
        assert_browser_safe(client.get(path))
    assert client.get("/api/customers").headers["X-Content-Type-Options"] == "nosniff"


def test_consumer_pages_carry_csp_and_no_inline_script(consumer):
    client = consumer.test_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeFeed(rsps, size=3, count=2)
        client.post("/poll")
    for path in ("/", f"/{consumer.plural}/1", "/dead-letters"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_browser_safe(response)


def test_the_session_cookie_is_samesite_lax_and_httponly(open_order_app):
    app = open_order_app
    app.config["WTF_CSRF_ENABLED"] = True
    cookie = app.test_client().get("/orders/new").headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie


# ---- links from elsewhere, redirects --------------------------------------------------------------------------

def _hrefs(html: str) -> list[str]:
    """The targets of the page's <a> links."""
    return re.findall(r'<a\b[^>]*\bhref="([^"]*)"', html)


@pytest.mark.parametrize("link", [XSS, " javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)",
                                  "data:text/html,<script>alert(1)</script>", "vbscript:x"])
def test_a_link_from_the_feed_is_clickable_on_the_record_and_dead_letter_pages_only_when_http(consumer, link):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeFeed(rsps, size=3, count=2)
        consumer.test_client().post("/poll")
    with consumer.app_context():
        with get_db().write() as session:
            session.execute(update(consumer.model).where(consumer.model.order_id == 1).values(order_url=link))
            session.add(consumer.tracking.DeadLetter(consumer="orders", position=9, entry_id="entry-9",
                                                     event_type="OrderCreated", link=link, content="{}",
                                                     reason="test", attempts=3))
    client = consumer.test_client()
    record = client.get(f"/{consumer.plural}/1").get_data(as_text=True)
    assert "Order 1" in record and not any("script:" in h or h.startswith("data:") for h in _hrefs(record))
    good = client.get(f"/{consumer.plural}/2").get_data(as_text=True)
    assert "http://orders.test/orders/2" in _hrefs(good) and "http://orders.test/api/orders/2" in _hrefs(good)
    letters = client.get("/dead-letters").get_data(as_text=True)
    assert "entry-9" in letters and not any("script:" in h or h.startswith("data:") for h in _hrefs(letters))


@pytest.mark.parametrize("referer", ["//evil.example/x", "http://evil/", "http://localhost//evil.example/x",
                                     "http://localhost/\\evil.example", "https://localhost/dead-letters",
                                     "http://localhost.evil.example/", "javascript:alert(1)", "/\t/evil.example"])
def test_poll_now_never_redirects_off_this_service(consumer, referer):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeFeed(rsps, size=3, count=0)
        response = consumer.test_client().post("/poll-now", headers={"Referer": referer})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_poll_now_goes_back_to_the_page_of_this_service_it_came_from(consumer):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeFeed(rsps, size=3, count=0)
        client = consumer.test_client()
        response = client.post("/poll-now", headers={"Referer": "http://localhost/dead-letters?page=2"})
        assert response.headers["Location"] == "/dead-letters?page=2"
        behind_proxy = client.post("/poll-now", headers={
            "Referer": "https://shop.example/invoicing/dead-letters", "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example", "X-Forwarded-Prefix": "/invoicing"})
        assert behind_proxy.headers["Location"] == "/invoicing/dead-letters"
        elsewhere = client.post("/poll-now", headers={
            "Referer": "https://shop.example/shipping//evil.example", "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example", "X-Forwarded-Prefix": "/invoicing"})
        assert elsewhere.headers["Location"] == "/invoicing/"
    with consumer.app_context():
        with get_db().read() as session:
            assert session.scalars(select(consumer.model)).all() == []

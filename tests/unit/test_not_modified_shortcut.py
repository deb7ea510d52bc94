"""The 304 shortcut (common/feeds/publish/shortcut.py): the same answer as the view, or the view itself."""
from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder

from common.feeds.publish.shortcut import NotModifiedShortcut
from common.service.web import PROXY_KEY
from order_service import create_app
from tests.unit.test_feed_http import order_body

BEHIND_THE_DOOR = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example", "X-Forwarded-Prefix": "/order"}


def make_app(tmp_path, **config):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}", "FEED_PAGE_SIZE": 3,
                      **config})
    app.viewed = []  # the requests that reached Flask
    app.before_request(lambda: app.viewed.append(1) and None)
    return app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


def by_the_view(app, path, headers):
    """The request answered with the shortcut lifted out: what the plain path says."""
    proxy = app.extensions[PROXY_KEY]
    shortcut = proxy.app
    assert isinstance(shortcut, NotModifiedShortcut)
    proxy.app = shortcut.app
    try:
        return app.test_client().get(path, headers=headers)
    finally:
        proxy.app = shortcut


def answer(response):
    return response.status_code, sorted((k, v) for k, v in response.headers.items() if k != "Date"), response.data


@pytest.mark.parametrize("forwarded", [{}, BEHIND_THE_DOOR], ids=["direct", "behind the door"])
@pytest.mark.parametrize("quote", ['{}', 'W/{}', '"other", {}'], ids=["strong", "weak", "in a list"])
def test_a_matching_conditional_get_is_answered_as_the_view_answers_it_without_reaching_the_view(app, forwarded,
                                                                                               quote):
    client = app.test_client()
    client.post("/api/orders", json=order_body())
    etag = client.get("/feed", headers=forwarded).headers["ETag"]
    headers = {**forwarded, "If-None-Match": quote.format(etag)}
    viewed = len(app.viewed)

    shortcut = client.get("/feed", headers=headers)

    assert len(app.viewed) == viewed, "the shortcut answered"
    assert shortcut.status_code == 304
    assert answer(shortcut) == answer(by_the_view(app, "/feed", headers))


def test_a_head_request_is_answered_too(app):
    client = app.test_client()
    etag = client.get("/feed").headers["ETag"]
    viewed = len(app.viewed)

    response = client.head("/feed", headers={"If-None-Match": etag})

    assert response.status_code == 304 and len(app.viewed) == viewed


def test_a_page_that_changed_since_the_etag_goes_to_the_view_which_sends_it(app):
    client = app.test_client()
    etag = client.get("/feed").headers["ETag"]
    client.post("/api/orders", json=order_body())
    viewed = len(app.viewed)

    response = client.get("/feed", headers={"If-None-Match": etag})

    assert response.status_code == 200 and len(app.viewed) == viewed + 1
    assert b"<entry>" in response.data


def test_an_etag_from_another_host_name_is_not_this_hosts_page(app):
    client = app.test_client()
    etag = client.get("/feed", headers=BEHIND_THE_DOOR).headers["ETag"]

    assert client.get("/feed", headers={"If-None-Match": etag}).status_code == 200


@pytest.mark.parametrize("extra", [{"Prefer": "wait=0"}, {}], ids=["long poll", "archive page"])
def test_long_polls_and_archive_pages_are_left_to_the_view(app, extra):
    client = app.test_client()
    for _ in range(3):  # page 1 full: an archive
        client.post("/api/orders", json=order_body())
    path = "/feed/pages/1" if not extra else "/feed"
    etag = client.get(path).headers["ETag"]
    viewed = len(app.viewed)

    response = client.get(path, headers={"If-None-Match": etag, **extra})

    assert response.status_code == 304 and len(app.viewed) == viewed + 1


def test_with_a_feed_token_only_the_right_bearer_is_answered_and_the_view_refuses_the_rest(tmp_path):
    app = make_app(tmp_path, FEED_TOKEN="s3cret-token")
    client = app.test_client()
    etag = client.get("/feed", headers={"Authorization": "Bearer s3cret-token"}).headers["ETag"]
    viewed = len(app.viewed)

    right = client.get("/feed", headers={"If-None-Match": etag, "Authorization": "Bearer s3cret-token"})
    assert right.status_code == 304 and len(app.viewed) == viewed
    for authorization in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0LXRva2Vu"}):
        refused = client.get("/feed", headers={"If-None-Match": etag, **authorization})
        assert refused.status_code == 401, authorization


def test_an_untrusted_host_is_left_to_the_app_whose_host_check_refuses_it(tmp_path):
    app = make_app(tmp_path, TRUSTED_HOSTS=["localhost"])
    etag = app.test_client().get("/feed").headers["ETag"]
    shortcut = app.extensions[PROXY_KEY].app

    def environ(host):
        return EnvironBuilder(path="/feed", headers={"If-None-Match": etag, "Host": host}).get_environ()

    assert shortcut._not_modified(environ("localhost")) is not None
    assert shortcut._not_modified(environ("evil.example")) is None


def test_the_answers_it_gives_are_counted_in_the_metrics_under_the_feed_route(app):
    client = app.test_client()
    etag = client.get("/feed").headers["ETag"]

    def counted():
        text = client.get("/metrics").get_data(as_text=True)
        line = next((line for line in text.splitlines() if line.startswith("atomshop_http_requests_total{")
                     and 'route="/feed"' in line and 'status="304"' in line and 'method="GET"' in line), None)
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = counted()
    for _ in range(3):
        assert client.get("/feed", headers={"If-None-Match": etag}).status_code == 304

    assert counted() == before + 3


def test_when_the_head_cannot_be_read_the_app_answers_the_error_as_it_answers_any_other(tmp_path, monkeypatch):
    app = make_app(tmp_path, TESTING=False)  # errors become the app's 500 page, as in production
    client = app.test_client()
    etag = client.get("/feed").headers["ETag"]
    publisher = app.extensions[PROXY_KEY].app.publisher

    def database_away():
        raise ConnectionError("the database is away")

    monkeypatch.setattr(publisher.head, "get", database_away)
    app.viewed.clear()
    response = client.get("/feed", headers={"If-None-Match": etag})
    assert response.status_code == 500
    assert app.viewed  # through Flask: its error page, security headers and metrics, not a bare server error
    assert response.headers["X-Content-Type-Options"] == "nosniff"

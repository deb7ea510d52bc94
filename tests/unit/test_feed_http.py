"""The order feed over HTTP (in process): paging, links, immutable archives, conditional GET."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from werkzeug.http import http_date, parse_date

from common.feeds.publish.publisher import PUBLISHER_KEY
from order_service import create_app
from tests.unit.test_feed_rfc4287 import assert_valid_atom

A = "{http://www.w3.org/2005/Atom}"
POSITION = "{tag:atomshop.example,2026:ns/feed}position"
SIZE = 3


def order_body(**overrides):
    body = {"customer_id": 1,
            "shipping_address": {"street": "1 Main St", "zip": "12345", "city": "Springfield"},
            "billing_address": {"street": "2 Side St", "zip": "54321", "city": "Shelbyville"},
            "lines": [{"item_id": 1, "quantity": 2}, {"item_id": 3, "quantity": 1}]}
    body.update(overrides)
    return body


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                       "FEED_PAGE_SIZE": SIZE})


@pytest.fixture
def client(app):
    return app.test_client()


def place(client, count=1, **overrides):
    ids = []
    for _ in range(count):
        response = client.post("/api/orders", json=order_body(**overrides))
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    return ids


def parse(body: bytes):
    """(links by rel, entries as dicts, is archive) of a feed page."""
    root = etree.fromstring(body)
    links = {link.get("rel"): link.get("href") for link in root.findall(A + "link")}
    entries = []
    for entry in root.findall(A + "entry"):
        link = entry.find(A + "link")
        entries.append({"id": entry.findtext(A + "id"), "position": int(entry.findtext(POSITION)),
                        "document": json.loads(entry.findtext(A + "content")),
                        "content_type": entry.find(A + "content").get("type"),
                        "link": dict(link.attrib), "updated": entry.findtext(A + "updated"),
                        "category": entry.find(A + "category").get("term")})
    archive = root.find("{http://purl.org/syndication/history/1.0}archive") is not None
    return links, entries, archive


def path_of(url: str) -> str:
    assert url.startswith("http://localhost/"), url
    return url[len("http://localhost"):]


def walk(client):
    """Every page from /feed back through prev-archive: [(path, response)], newest page first."""
    pages, path = [], "/feed"
    while path:
        response = client.get(path)
        assert response.status_code == 200, path
        pages.append((path, response))
        path = parse(response.data)[0].get("prev-archive")
        path = path and path_of(path)
    return pages


@pytest.mark.parametrize("orders, current, archives, on_current", [
    (0, 1, 0, 0), (1, 1, 0, 1), (SIZE - 1, 1, 0, SIZE - 1), (SIZE, 2, 1, 0), (SIZE + 1, 2, 1, 1),
])
def test_pages_at_the_boundaries_hold_the_right_entries(client, orders, current, archives, on_current):
    place(client, orders)
    pages = walk(client)
    assert len(pages) == archives + 1
    links, entries, archive = parse(pages[0][1].data)
    assert not archive
    assert links["self"] == "http://localhost/feed" and links["current"] == "http://localhost/feed"
    assert [e["position"] for e in entries] == list(range(orders, orders - on_current, -1))
    assert ("prev-archive" in links) == (archives > 0)
    for path, response in pages[1:]:
        k = int(path.rsplit("/", 1)[1])
        links, entries, archive = parse(response.data)
        assert archive and path == f"/feed/pages/{k}"
        assert [e["position"] for e in entries] == list(range(k * SIZE, (k - 1) * SIZE, -1))
        assert links["self"] == f"http://localhost/feed/pages/{k}"
        assert links["next-archive"] == f"http://localhost/feed/pages/{k + 1}"
        assert links["current"] == "http://localhost/feed"
    for _, response in pages:
        assert_valid_atom(response.data)
        assert response.content_type == "application/atom+xml; charset=utf-8"


def test_walking_prev_archive_from_the_feed_yields_every_order_exactly_once(client):
    ids = place(client, 4 * SIZE + 2)
    seen = [entry for _, response in walk(client) for entry in parse(response.data)[1]]
    assert sorted(e["position"] for e in seen) == list(range(1, len(ids) + 1))
    assert sorted(e["document"]["id"] for e in seen) == ids
    assert len({e["id"] for e in seen}) == len(ids)


def test_entries_carry_the_order_document_and_a_json_alternate_link(client):
    (order_id,) = place(client)
    response = client.get("/feed")
    (entry,) = parse(response.data)[1]
    assert entry["id"] == f"tag:atomshop.example,2026:order/{order_id}"
    assert entry["category"] == "OrderCreated" and entry["content_type"] == "text"
    assert entry["link"] == {"href": f"http://localhost/api/orders/{order_id}", "rel": "alternate",
                             "type": "application/json"}
    assert entry["document"] == client.get(f"/api/orders/{order_id}").get_json()
    # feedgen 1.0.0 drops entry-level link attributes: check the emitted bytes themselves.
    assert (f'<link href="http://localhost/api/orders/{order_id}" rel="alternate" '
            f'type="application/json"/>').encode() in response.data
    assert b"<atomshop:position>1</atomshop:position>" in response.data


def test_an_archive_page_never_changes_after_more_orders(app, client):
    place(client, SIZE + 1)
    first = client.get("/feed/pages/1")
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    place(client, 3 * SIZE)
    app.extensions[PUBLISHER_KEY].cache.clear()  # rendered again from the database, not served from memory
    again = client.get("/feed/pages/1")
    assert again.data == first.data
    assert again.headers["ETag"] == first.headers["ETag"]


def test_the_page_being_filled_redirects_to_the_feed_until_it_is_full(client):
    place(client, SIZE + 1)
    links = parse(client.get("/feed/pages/1").data)[0]
    assert links["next-archive"] == "http://localhost/feed/pages/2"
    response = client.get("/feed/pages/2")
    assert response.status_code == 302 and response.headers["Location"] == "http://localhost/feed"
    behind = client.get("/feed/pages/2", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example",
                                                  "X-Forwarded-Prefix": "/order"})
    assert behind.headers["Location"] == "https://shop.example/order/feed"  # as the links name it
    place(client, SIZE - 1)
    assert client.get("/feed/pages/2").status_code == 200


@pytest.mark.parametrize("path", [
    "/feed/pages/0", "/feed/pages/01", "/feed/pages/-1", "/feed/pages/abc", "/feed/pages/1.5",
    "/feed/pages/3", "/feed/pages/999999999999999", "/feed/pages/" + "9" * 40, "/feed/pages/",
    "/feed/pages/1/x", "/feed/pages/%00", "/feed/page/1",
])
def test_bad_or_unknown_page_urls_answer_404(client, path):
    place(client, SIZE + 1)  # archive 1 exists, 2 is current
    response = client.get(path)
    assert response.status_code == 404
    assert b"Traceback" not in response.data


def test_links_honour_the_forwarded_headers_of_a_reverse_proxy(client):
    place(client, SIZE + 1)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example", "X-Forwarded-Prefix": "/orders"}
    links, entries, _ = parse(client.get("/feed", headers=headers).data)
    assert links["self"] == "https://shop.example/orders/feed"
    assert links["prev-archive"] == "https://shop.example/orders/feed/pages/1"
    assert entries[0]["link"]["href"] == f"https://shop.example/orders/api/orders/{SIZE + 1}"
    archive = client.get("/feed/pages/1", headers=headers)
    links, entries, _ = parse(archive.data)
    assert links["current"] == "https://shop.example/orders/feed"
    assert all(e["link"]["href"].startswith("https://shop.example/orders/api/orders/") for e in entries)
    # The proxied rendering is kept apart from the direct one.
    direct = client.get("/feed/pages/1")
    assert parse(direct.data)[0]["self"] == "http://localhost/feed/pages/1"
    assert direct.headers["ETag"] != archive.headers["ETag"]


@pytest.mark.parametrize("path", ["/feed", "/feed/pages/1"])
def test_a_matching_if_none_match_answers_304_without_a_body(client, path):
    place(client, SIZE + 1)
    response = client.get(path)
    etag = response.headers["ETag"]
    assert etag.startswith('"') and "Last-Modified" in response.headers
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(path, headers={"If-None-Match": value})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("path", ["/feed", "/feed/pages/1"])
def test_every_304_carries_the_pages_etag_and_last_modified_as_its_200_does(app, client, clock, path):
    # The publisher's clock stands still: the current page's date would settle a second later (pages.py).
    place(client, SIZE + 1)
    page = client.get(path)
    etag, modified = page.headers["ETag"], page.headers["Last-Modified"]
    # The current page's plain revalidations are answered before Flask (shortcut.py), the rest by the view.
    asks = [("GET", {"If-None-Match": etag}), ("HEAD", {"If-None-Match": etag})]
    if path == "/feed":
        asks.append(("GET", {"If-None-Match": etag, "Prefer": "wait=1"}))  # a long poll that timed out
    for method, headers in asks:
        again = client.open(path, method=method, headers=headers)
        assert again.status_code == 304, (method, headers)
        assert (again.headers.get("ETag"), again.headers.get("Last-Modified")) == (etag, modified), (method, headers)


def test_a_new_order_changes_the_current_pages_etag(client):
    place(client)
    etag = client.get("/feed").headers["ETag"]
    place(client)
    response = client.get("/feed", headers={"If-None-Match": etag})
    assert response.status_code == 200 and len(parse(response.data)[1]) == 2


class Clock:
    """A settable clock for the publisher: both the notification stamps and "now"."""

    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


@pytest.fixture
def clock(app):
    clock = Clock(datetime(2026, 3, 1, 12, 0, 0, 100_000, tzinfo=UTC))
    app.extensions[PUBLISHER_KEY].clock = clock
    return clock


def test_an_order_stored_in_the_same_second_as_the_clients_copy_is_never_hidden(client, clock):
    place(client)
    clock.moment += timedelta(milliseconds=100)
    copy = client.get("/feed")
    assert copy.headers["Last-Modified"] == "Sun, 01 Mar 2026 12:00:00 GMT"
    clock.moment += timedelta(milliseconds=700)  # same second
    place(client)
    for since in (copy.headers["Last-Modified"], http_date(clock.moment)):
        response = client.get("/feed", headers={"If-Modified-Since": since})
        assert response.status_code == 200
        assert [e["position"] for e in parse(response.data)[1]] == [2, 1]


def test_a_new_order_stamped_at_the_same_instant_still_changes_the_current_pages_etag(client, clock):
    """The store stamps two orders alike when the clock stands still or steps back: the ETag must still change."""
    place(client)
    etag = client.get("/feed").headers["ETag"]
    place(client)  # the clock has not moved: same `created`, same Last-Modified
    response = client.get("/feed", headers={"If-None-Match": etag})
    assert response.status_code == 200 and len(parse(response.data)[1]) == 2
    assert response.headers["ETag"] != etag


def test_if_modified_since_answers_304_once_the_newest_second_has_settled(client, clock):
    place(client)
    clock.moment += timedelta(seconds=5)
    response = client.get("/feed")
    since = response.headers["Last-Modified"]
    assert since == "Sun, 01 Mar 2026 12:00:02 GMT"
    not_modified = client.get("/feed", headers={"If-Modified-Since": since})
    assert not_modified.status_code == 304 and not_modified.data == b""
    clock.moment += timedelta(milliseconds=300)
    place(client)
    assert client.get("/feed", headers={"If-Modified-Since": since}).status_code == 200


def test_if_modified_since_answers_304_for_an_archive_page(client, clock):
    place(client, SIZE)
    clock.moment += timedelta(minutes=1)
    since = client.get("/feed/pages/1").headers["Last-Modified"]
    assert client.get("/feed/pages/1", headers={"If-Modified-Since": since}).status_code == 304
    earlier = http_date(datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    assert client.get("/feed/pages/1", headers={"If-Modified-Since": earlier}).status_code == 200


def test_an_archive_page_keeps_its_last_modified_from_the_moment_it_fills(client, clock):
    place(client, SIZE)  # page 1 fills: followers ask for it at once, and caches keep that copy for a year
    first = client.get("/feed/pages/1")
    clock.moment += timedelta(minutes=1)
    later = client.get("/feed/pages/1")
    assert later.data == first.data and later.headers["ETag"] == first.headers["ETag"]
    assert later.headers["Last-Modified"] == first.headers["Last-Modified"] == "Sun, 01 Mar 2026 12:00:00 GMT"
    since = first.headers["Last-Modified"]
    assert client.get("/feed/pages/1", headers={"If-Modified-Since": since}).status_code == 304


def test_if_none_match_takes_precedence_over_if_modified_since(client, clock):
    place(client)
    clock.moment += timedelta(seconds=5)
    since = client.get("/feed").headers["Last-Modified"]
    response = client.get("/feed", headers={"If-None-Match": '"stale"', "If-Modified-Since": since})
    assert response.status_code == 200


def test_an_empty_feed_is_a_valid_current_page_dated_when_the_feed_began_across_restarts(tmp_path):
    before = datetime.now(UTC).replace(microsecond=0)  # the feed begins when its app first runs: after this
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "FEED_PAGE_SIZE": SIZE})
    response = app.test_client().get("/feed")
    assert response.status_code == 200
    assert_valid_atom(response.data)
    links, entries, archive = parse(response.data)
    assert entries == [] and not archive and "prev-archive" not in links
    assert response.headers["Cache-Control"] == "public, max-age=2"
    updated = etree.fromstring(response.data).findtext(f"{A}updated")
    assert datetime.fromisoformat(updated) >= before  # not 1970: when this feed began
    assert parse_date(response.headers["Last-Modified"]) >= before - timedelta(seconds=1)
    restarted = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "FEED_PAGE_SIZE": SIZE})
    again = restarted.test_client().get("/feed")
    assert etree.fromstring(again.data).findtext(f"{A}updated") == updated
    assert again.headers["ETag"] == response.headers["ETag"]


def test_the_feed_links_its_page_for_people(client):
    feed = etree.fromstring(client.get("/feed").data)
    html = [link.get("href") for link in feed.findall(f"{A}link")
            if link.get("rel") == "alternate" and link.get("type") == "text/html"]
    assert html == ["http://localhost/feed/view"]


def test_hostile_strings_are_escaped_in_the_xml_and_intact_in_the_json(client):
    hostile = '<script>alert("x")</script> ]]> &amp; \t\u00e9\U0001F600'
    place(client, shipping_address={"street": hostile, "zip": "]]>", "city": "<![CDATA[x]]>"})
    response = client.get("/feed")
    assert_valid_atom(response.data)
    assert b"<script>" not in response.data
    document = parse(response.data)[1][0]["document"]
    assert document["shipping_address"] == {"street": hostile, "zip": "]]>", "city": "<![CDATA[x]]>"}


def test_a_clock_stepped_back_an_hour_never_moves_stamps_or_last_modified_backwards_nor_hides_orders(client, clock):
    place(client)
    clock.moment += timedelta(seconds=5)
    before = client.get("/feed")
    since = before.headers["Last-Modified"]
    assert client.get("/feed", headers={"If-Modified-Since": since}).status_code == 304
    clock.moment -= timedelta(hours=1)  # NTP steps the wall clock back
    place(client)
    after = client.get("/feed", headers={"If-Modified-Since": since})
    assert after.status_code == 200  # the new orders are not hidden behind the copy the client holds
    entries = parse(after.data)[1]
    assert [e["position"] for e in entries] == [2, 1]
    stamps = [datetime.fromisoformat(e["updated"].replace("Z", "+00:00")) for e in reversed(entries)]
    assert stamps[0] < stamps[1]  # strictly after the previous one, whatever the clock says
    assert parse_http(after.headers["Last-Modified"]) >= parse_http(since)
    assert after.headers["ETag"] != before.headers["ETag"]
    clock.moment += timedelta(hours=1, seconds=10)  # the clock catches up: dates settle and 304s come back
    settled = client.get("/feed").headers["Last-Modified"]
    assert parse_http(settled) > parse_http(since)
    assert client.get("/feed", headers={"If-Modified-Since": settled}).status_code == 304


def test_a_cancellation_stamped_after_a_clock_step_back_is_not_hidden_behind_a_date_the_feed_gave_out(
        client, monkeypatch):
    # The cancellation is appended by the order service's own log, not the publisher's: both read one steady clock.
    from common.feeds.publish import clock as clock_module
    from common.feeds.publish.clock import SteadyClock

    clock = Clock(datetime(2026, 3, 1, 12, 0, 0, 100_000, tzinfo=UTC))
    monkeypatch.setattr(clock_module, "_process_clock", SteadyClock(clock))
    order_id = place(client)[0]
    clock.moment += timedelta(seconds=5)
    since = client.get("/feed").headers["Last-Modified"]
    assert parse_http(since) > datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)  # a settled date, after the order
    clock.moment -= timedelta(hours=1)  # NTP steps the wall clock back
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 202
    after = client.get("/feed", headers={"If-Modified-Since": since})
    assert after.status_code == 200
    assert [e["position"] for e in parse(after.data)[1]] == [2, 1]


def parse_http(value: str) -> datetime:
    from werkzeug.http import parse_date
    return parse_date(value)

"""The nginx front door (deploy/nginx/atomshop.conf.template) in front of the real services under gunicorn,
on PostgreSQL: home page, links that point at the door, and the feed cache that absorbs a herd of pollers."""
from __future__ import annotations

import re
import threading
import time
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest
import requests

from tests.servers import GunicornServices, feed_links, page_links
from tests.support import wait_until

PAGE_SIZE = 3
ADDRESS = {"street": "1 Main St", "zip": "12345", "city": "Springfield"}


@pytest.fixture(scope="module")
def backends(postgres, tmp_path_factory):
    """The three services under gunicorn on PostgreSQL, the consumers reading the feed through the door's port."""
    with GunicornServices(postgres, tmp_path_factory.mktemp("front-door"), order_instances=1, poll_interval=1.0,
                          page_size=PAGE_SIZE) as services:
        yield services


@pytest.fixture
def door(backends):
    """A fresh nginx (empty cache) with the repo's config in front of the services."""
    with backends.front_door() as nginx:
        yield nginx


def place_orders(base_url: str, count: int) -> list[dict]:
    """Orders placed through the JSON API at base_url."""
    customer = requests.get(base_url + "/api/customers", timeout=10).json()[0]
    item = requests.get(base_url + "/api/items", timeout=10).json()[0]
    created = []
    for _ in range(count):
        response = requests.post(base_url + "/api/orders", timeout=10, json={
            "customer_id": customer["id"], "shipping_address": ADDRESS, "billing_address": ADDRESS,
            "lines": [{"item_id": item["id"], "quantity": 1}]})
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


def max_age(response: requests.Response) -> int:
    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    assert match, f"no max-age in {response.headers.get('Cache-Control')!r}"
    return int(match.group(1))


def test_the_home_page_links_the_three_uis_and_each_answers_through_the_door(door):
    response = requests.get(door.url + "/", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    urls = page_links(response.text)
    for ui in ("/order/", "/invoicing/", "/shipping/"):
        assert ui in urls
        assert requests.get(door.url + ui, timeout=10).status_code == 200, ui


def test_feed_links_fetched_through_the_door_point_at_the_door(door, backends):
    place_orders(backends.order.url, PAGE_SIZE + 1)  # at least one archive page
    base = f"{door.url}/order"

    current = feedparser.parse(requests.get(base + "/feed", timeout=10).content)
    current_links = feed_links(current)
    assert current_links["self"] == base + "/feed"
    assert current_links["prev-archive"].startswith(base + "/feed/pages/")
    archive = feedparser.parse(requests.get(current_links["prev-archive"], timeout=10).content)
    archive_links = feed_links(archive)
    assert archive_links["self"] == current_links["prev-archive"]
    assert archive_links["current"] == base + "/feed"
    assert archive_links["next-archive"].startswith(base + "/feed")

    entry = archive.entries[0]
    alternate = next(link["href"] for link in entry.links if link["rel"] == "alternate")
    assert alternate.startswith(base + "/api/orders/")
    document = requests.get(alternate, timeout=10)
    assert document.status_code == 200 and document.json()["id"] == int(alternate.rsplit("/", 1)[1])


def test_links_in_every_ui_page_fetched_through_the_door_stay_under_its_prefix(door, backends):
    created = place_orders(backends.order.url, 1)[0]
    wait_until(lambda: all(requests.get(f"{backends.consumers[name][0].url}/api/{plural}/{created['id']}",
                                        timeout=5).ok
                           for name, plural in (("invoicing", "invoices"), ("shipping", "shipments"))),
               30, message="the consumers to record the order")
    pages = {"/order/": ["/", f"/orders/{created['id']}", "/orders/new"],
             "/invoicing/": ["/", f"/invoices/{created['id']}"],
             "/shipping/": ["/", f"/shipments/{created['id']}"]}
    for prefix, paths in pages.items():
        for path in paths:
            url = door.url + prefix.rstrip("/") + path
            response = requests.get(url, timeout=10)
            assert response.status_code == 200, url
            for link in page_links(response.text):
                if link.startswith(("#", "data:", "mailto:")):
                    continue
                # Links within a service keep its prefix; links to the other UIs use theirs; absolute ones
                # point at the door, never at a service's own port.
                if link.startswith("http"):
                    assert link.startswith(door.url + "/"), f"{url} links {link}"
                else:
                    assert link.startswith(("/order/", "/invoicing/", "/shipping/")), f"{url} links {link}"


def test_an_order_placed_through_the_door_is_redirected_to_under_the_door(door):
    created = place_orders(door.url + "/order", 1)[0]
    location = requests.get(f"{door.url}/order/api/orders/{created['id']}", timeout=10)

    assert location.status_code == 200
    response = requests.post(door.url + "/order/api/orders", timeout=10, json={
        "customer_id": created["customer"]["id"], "shipping_address": ADDRESS, "billing_address": ADDRESS,
        "lines": [{"item_id": created["lines"][0]["item"]["id"], "quantity": 2}]})
    assert response.status_code == 201
    assert re.fullmatch(rf"({re.escape(door.url)})?/order/api/orders/\d+", response.headers["Location"])


def wait_for_consumers_to_catch_up(backends) -> None:
    """Until every consumer instance has handled the whole feed (and so stopped walking its archive pages)."""
    newest = requests.get(backends.order.url + "/health", timeout=5).json()["feed_position"]
    instances = backends.invoicing + backends.shipping
    wait_until(lambda: all(requests.get(i.url + "/health", timeout=5).json()["position"] == newest
                           for i in instances), 30, message=f"the consumers to reach feed position {newest}")


def origin_requests(backends, path: str, before: int, expected: int) -> int:
    """Requests for path in the order service's access log since `before`, once at least `expected` are logged
    (gunicorn writes a line after the response has gone out)."""
    def count() -> int:
        return len(backends.order.access_lines(path)) - before

    try:
        wait_until(lambda: count() >= expected, 5)
    except AssertionError:
        pass
    time.sleep(0.2)  # and any straggler beyond `expected`
    return count()


def test_an_archive_page_is_served_from_the_cache_after_the_first_fetch(door, backends):
    place_orders(backends.order.url, PAGE_SIZE)
    wait_for_consumers_to_catch_up(backends)
    # The consumers read the feed through this door as 127.0.0.1 and may have cached the archive already. The
    # cache key holds the Host, so a client calling the door `localhost` has entries of its own.
    door_url = door.url.replace("127.0.0.1", "localhost")
    current = feedparser.parse(requests.get(door_url + "/order/feed", timeout=10).content)
    archive_url = feed_links(current)["prev-archive"]
    assert archive_url.startswith(door_url + "/order/feed/pages/")
    path = archive_url.split("/order", 1)[1]
    origin_before = len(backends.order.access_lines(path + " "))

    first = requests.get(archive_url, timeout=10)
    repeats = [requests.get(archive_url, timeout=10) for _ in range(20)]
    revalidated = requests.get(archive_url, timeout=10, headers={"If-None-Match": first.headers["ETag"]})

    assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
    assert max_age(first) >= 86400
    assert {(r.status_code, r.headers["X-Cache-Status"]) for r in repeats} == {(200, "HIT")}
    assert {r.content for r in repeats} == {first.content}
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert origin_requests(backends, path + " ", origin_before, 1) == 1


def test_the_door_answers_if_none_match_from_the_cache_but_never_hides_a_page_behind_if_modified_since(door):
    feed_url = door.url + "/order/feed"
    first = requests.get(feed_url, timeout=10)

    by_etag = requests.get(feed_url, timeout=10, headers={"If-None-Match": first.headers["ETag"]})
    by_date = requests.get(feed_url, timeout=10, headers={"If-Modified-Since": first.headers["Last-Modified"]})

    assert by_etag.status_code == 304 and by_etag.content == b""
    # Same-second dates cannot tell two versions of the current page apart: the body comes back.
    assert by_date.status_code == 200 and by_date.content == first.content


def test_an_archive_page_is_answered_304_by_date_through_the_door_as_by_the_origin(door, backends):
    place_orders(backends.order.url, PAGE_SIZE + 1)
    archive_url = door.url + "/order/feed/pages/1"
    first = requests.get(archive_url, timeout=10)
    since = {"If-Modified-Since": first.headers["Last-Modified"]}
    # An archive never changes, nor does its date: its own date is safely answered from the cache.
    assert requests.get(archive_url, timeout=10, headers=since).status_code == 304
    assert requests.get(backends.order.url + "/feed/pages/1", timeout=10, headers=since).status_code == 304


def test_a_poller_that_finds_the_cached_current_page_expired_gets_the_fresh_page_not_the_old_copy(door, backends):
    # A follower polling every N seconds always finds the copy expired: were it answered with the old copy while
    # nginx refreshes in the background, every poll would read the page as it was one poll earlier.
    feed_url = door.url + "/order/feed"
    own_key = {"Host": "expiry.localhost"}  # a cache entry no other test or follower touches
    cached = requests.get(feed_url, timeout=10, headers=own_key)
    period = max_age(cached)
    new = place_orders(backends.order.url, 1)[0]
    time.sleep(period + 1.5)  # nginx counts validity in whole seconds

    after_expiry = requests.get(feed_url, timeout=10, headers=own_key)

    assert after_expiry.status_code == 200
    assert after_expiry.headers["X-Cache-Status"] in ("EXPIRED", "REVALIDATED", "MISS"), after_expiry.headers
    assert after_expiry.headers["ETag"] != cached.headers["ETag"]
    assert f"order/{new['id']}" in newest_entries(after_expiry)


def test_pages_other_than_the_feed_are_never_cached(door, backends):
    before = len(backends.order.access_lines("/api/items"))
    responses = [requests.get(door.url + "/order/api/items", timeout=10) for _ in range(5)]

    assert all(r.status_code == 200 and "X-Cache-Status" not in r.headers for r in responses)
    assert origin_requests(backends, "/api/items", before, 5) == 5


def test_a_herd_of_pollers_costs_the_origin_about_one_request_per_cache_period(door, backends):
    pollers, duration = 200, 10.0
    feed_url = door.url + "/order/feed"
    period = max_age(requests.get(feed_url, timeout=10))
    origin = backends.order
    statuses: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Event()
    deadline = [0.0]

    def poll():
        session = requests.Session()
        etag = None
        start.wait()
        while time.monotonic() < deadline[0]:
            try:
                # Pollers revalidate what they hold, as the follower does.
                response = session.get(feed_url, timeout=10, headers={"If-None-Match": etag} if etag else {})
            except requests.RequestException as exc:
                with lock:
                    errors.append(repr(exc))
                continue
            etag = response.headers.get("ETag", etag)
            key = f"{response.status_code} {response.headers.get('X-Cache-Status')}"
            with lock:
                statuses[key] = statuses.get(key, 0) + 1

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # let every thread get to the start line
    before = len(origin.access_lines("/feed "))
    deadline[0] = time.monotonic() + duration
    start.set()
    time.sleep(duration / 2)
    new = place_orders(origin.url, 1)[0]  # the feed changes under the herd
    for thread in threads:
        thread.join(duration + 15)
    origin_requests = len(origin.access_lines("/feed ")) - before

    total = sum(statuses.values())
    print(f"\n{pollers} pollers, {duration:.0f}s: {total} responses through nginx ({total / duration:.0f}/s), "
          f"{origin_requests} reached the origin (cache period {period}s); {statuses}")
    assert not errors, errors[:5]
    # UPDATING: the old copy, to requests that came while another one refreshed it.
    served = {status.split()[1] for status in statuses}
    assert served <= {"HIT", "STALE", "UPDATING", "MISS", "EXPIRED", "REVALIDATED"}, statuses
    assert {status.split()[0] for status in statuses} <= {"200", "304"}, statuses
    assert total > 10 * origin_requests, "the herd should have been served from the cache"
    assert 1 <= origin_requests <= duration / period + 2, f"{origin_requests} origin requests in {duration}s"
    # Micro-caching delays a new entry by at most about one cache period.
    wait_until(lambda: f"order/{new['id']}" in newest_entries(requests.get(feed_url, timeout=10)), period + 3,
               message="the new order to appear in the feed through the door")


def newest_entries(current: requests.Response) -> str:
    """The current page's text and, when it has an older one, that page's: an entry that fills its page up is
    on the archive page it filled, while the current page is the next, still empty one (PAGE_SIZE is small)."""
    older = feed_links(feedparser.parse(current.content)).get("prev-archive")
    if older is None:
        return current.text
    # Asked the way the current page was (a test may name its own Host, which resolves nowhere).
    host = {k: v for k, v in current.request.headers.items() if k == "Host"}
    return current.text + requests.get(urljoin(current.url, urlsplit(older).path), headers=host, timeout=10).text


@pytest.mark.parametrize("service, resource", [("invoicing", "invoices"), ("shipping", "shipments")])
def test_the_invoicing_and_shipping_feeds_and_their_archives_are_served_and_cached_by_the_door(door, backends,
                                                                                               service, resource):
    place_orders(backends.order.url, PAGE_SIZE + 1)  # a full archive page in each consumer's feed too
    wait_for_consumers_to_catch_up(backends)
    door_url = door.url.replace("127.0.0.1", "localhost")  # a cache key of its own (see the archive test)
    current = requests.get(f"{door_url}/{service}/feed", timeout=10)
    assert current.status_code == 200 and current.headers["X-Cache-Status"] in ("MISS", "EXPIRED")
    links = feed_links(feedparser.parse(current.content))
    assert links["self"] == f"{door_url}/{service}/feed"  # the service saw the door's prefix
    archive_url = links["prev-archive"]
    assert archive_url.startswith(f"{door_url}/{service}/feed/pages/")
    first, again = requests.get(archive_url, timeout=10), requests.get(archive_url, timeout=10)
    assert first.status_code == again.status_code == 200 and max_age(first) >= 86400
    assert again.headers["X-Cache-Status"] == "HIT" and again.content == first.content
    entry = feedparser.parse(first.content).entries[0]
    [alternate] = [link.href for link in entry.links if link.rel == "alternate"]
    assert alternate.startswith(f"{door_url}/{service}/api/{resource}/")


class FailingOrigin:
    """A loopback origin serving a current page cacheable for 1 s, until `fail` is set: then 503."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        origin = self
        self.fail = False

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"" if origin.fail else b'<feed xmlns="http://www.w3.org/2005/Atom"/>'
                self.send_response(503 if origin.fail else 200)
                self.send_header("Content-Type", "application/atom+xml" if body else "application/json")
                self.send_header("Content-Length", str(len(body)))
                if body:
                    self.send_header("Cache-Control", "public, max-age=1")
                    self.send_header("ETag", '"one"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_failing_service_is_not_hidden_behind_an_old_copy_of_its_current_page():
    from tests.servers import NginxServer

    origin = FailingOrigin()
    try:
        with NginxServer(order=origin.address) as door:
            first = requests.get(door.url + "/order/feed", timeout=10)
            assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
            origin.fail = True
            time.sleep(3)  # the copy has expired (nginx counts max-age=1 in whole seconds of its own clock)
            after = requests.get(door.url + "/order/feed", timeout=10)
            # Followers must see the outage (their /health, POST /poll), not the copy of before it.
            assert after.status_code == 503, (after.status_code, after.headers.get("X-Cache-Status"))
    finally:
        origin.close()

"""Long polling of /feed with real processes: woken across processes, recovered, through nginx, stopped quickly."""
from __future__ import annotations

import os
import signal
import threading
import time

import psycopg
import pytest
import requests

from tests.faults.proxy import FaultProxy
from tests.servers import GunicornProcess, NginxServer
from tests.support import ServiceProcess, wait_until
from tests.unit.test_feed_http import order_body

WAIT = 20  # what followers ask by default; the contract's bound for everything timed below


class HeldRequest(threading.Thread):
    """A long poll of `url` with the page's current ETag, in a thread: `.response`, `.elapsed` once it ended."""

    def __init__(self, url: str, etag: str, wait: int = WAIT, headers: dict | None = None):
        super().__init__(daemon=True)
        self.url, self.etag, self.wait = url, etag, wait
        self.headers = headers or {}
        self.response: requests.Response | None = None
        self.error: Exception | None = None
        self.elapsed = 0.0
        self.start()

    def run(self):
        started = time.monotonic()
        try:
            self.response = requests.get(self.url, timeout=self.wait + 30, headers={
                "Prefer": f"wait={self.wait}", "If-None-Match": self.etag, **self.headers})
        except requests.RequestException as exc:
            self.error = exc
        self.elapsed = time.monotonic() - started


def hold(url: str, wait: int = WAIT, headers: dict | None = None) -> HeldRequest:
    """Start a long poll on `url` and check that it is held."""
    etag = requests.get(url, timeout=10, headers=headers or {}).headers["ETag"]
    held = HeldRequest(url, etag, wait, headers)
    time.sleep(0.5)
    assert held.is_alive(), f"not held: {held.response and held.response.status_code}"
    return held


def place(base: str) -> int:
    response = requests.post(base + "/api/orders", json=order_body(), timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_woken_with(held: HeldRequest, order_id: int) -> None:
    held.join(WAIT + 30)
    assert held.error is None, held.error
    assert held.response.status_code == 200
    assert held.response.headers["Preference-Applied"] == f"wait={held.wait}"
    assert f"/api/orders/{order_id}".encode() in held.response.content
    # Answered because of the order, not because the wait ran out (whose answer would also be 200 by then).
    assert held.elapsed < held.wait - 5, held.elapsed


def test_an_order_placed_in_another_process_releases_a_held_request_on_sqlite(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"}
    with ServiceProcess("order_service", tmp_path / "a", env=env) as holder, \
            ServiceProcess("order_service", tmp_path / "b", env=env) as writer:
        held = hold(holder.url + "/feed")
        assert_woken_with(held, place(writer.url))


def test_an_order_placed_in_another_instance_releases_a_held_request_on_postgresql(tmp_path, postgres):
    env = {"DATABASE_URL": postgres.create_database()}
    with GunicornProcess("order_service.app:create_app()", tmp_path / "a", env=env, threads=16) as holder:
        with GunicornProcess("order_service.app:create_app()", tmp_path / "b", env=env, threads=16) as writer:
            held = hold(holder.url + "/feed")
            assert_woken_with(held, place(writer.url))


def test_a_missed_notification_is_recovered_by_the_listeners_re_check(tmp_path, postgres):
    url = postgres.create_database()
    with GunicornProcess("order_service.app:create_app()", tmp_path / "a", env={"DATABASE_URL": url},
                         threads=16) as order:
        order_id = place(order.url)
        held = hold(order.url + "/feed")
        # A row appended by other means than the publisher: no NOTIFY is ever sent for it.
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute("INSERT INTO notifications (position, event_type, created, document) "
                         "SELECT position + 1, event_type, now() at time zone 'utc', document FROM notifications "
                         "ORDER BY position DESC LIMIT 1")
        assert_woken_with(held, order_id)
        assert held.response.text.count(f"/api/orders/{order_id}") == 2


def test_a_held_request_ends_with_304_at_the_timeout_and_a_stale_validator_is_answered_at_once(tmp_path):
    with ServiceProcess("order_service", tmp_path) as order:
        held = HeldRequest(order.url + "/feed", requests.get(order.url + "/feed").headers["ETag"], wait=2)
        stale = requests.get(order.url + "/feed", headers={"Prefer": "wait=20", "If-None-Match": '"stale"'},
                             timeout=WAIT - 5)
        assert stale.status_code == 200 and "Preference-Applied" not in stale.headers
        held.join(30)
        assert held.response.status_code == 304
        assert held.response.headers["Preference-Applied"] == "wait=2"


@pytest.mark.parametrize("server", ["werkzeug", "gunicorn"])
def test_sigterm_stops_a_service_holding_long_polls_within_five_seconds(tmp_path, server):
    if server == "werkzeug":
        order = ServiceProcess("order_service", tmp_path).start()
    else:
        order = GunicornProcess("order_service.app:create_app()", tmp_path, threads=16).start()
    try:
        held = [hold(order.url + "/feed", wait=30) for _ in range(5)]
        started = time.monotonic()
        os.killpg(order.proc.pid, signal.SIGTERM)
        order.proc.wait(30)
        assert time.monotonic() - started < 5
        for request in held:
            request.join(10)
            # Answered (304: nothing changed) or cut off by the exiting process: never left hanging.
            assert request.error is not None or request.response.status_code == 304
    finally:
        order.kill()


def test_long_polls_pass_through_nginx_to_the_origin_while_plain_gets_stay_cached(tmp_path):
    with GunicornProcess("order_service.app:create_app()", tmp_path, threads=16,
                         env={"DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}"}) as order, \
            NginxServer(order=f"127.0.0.1:{order.port}") as nginx:
        feed = nginx.url + "/order/feed"
        requests.get(feed)
        assert requests.get(feed).headers["X-Cache-Status"] == "HIT"
        held = hold(feed)
        order_id = place(order.url)
        assert_woken_with(held, order_id)
        assert held.response.headers["X-Cache-Status"] == "LONG-POLL"
        # Links in the held answer point at the front door, like every other page served through it.
        assert f'href="{feed}"'.encode() in held.response.content
        timed_out = HeldRequest(feed, held.response.headers["ETag"], wait=2)
        timed_out.join(30)
        assert timed_out.response.status_code == 304


@pytest.mark.parametrize("honoured", [True, False])
def test_a_follower_long_polls_a_feed_that_holds_and_falls_back_to_its_schedule_otherwise(tmp_path, honoured):
    with ServiceProcess("order_service", tmp_path / "order") as order, FaultProxy(order.url) as proxy:
        if not honoured:
            proxy.drop_request_headers = {"prefer"}  # the feed never sees it, so answers at once like before
        env = {"ORDER_FEED_URL": proxy.url + "/feed", "POLL_INTERVAL": "1", "LONG_POLL_WAIT": str(WAIT)}
        with ServiceProcess("invoicing_service", tmp_path / "invoicing", env=env) as invoicing:
            def poller():
                return requests.get(invoicing.url + "/health").json()["poller"]
            for _ in range(2):  # the first long poll is held until the second order (or its wait) ends it
                order_id = place(order.url)
                wait_until(lambda n=order_id: requests.get(f"{invoicing.url}/api/invoices/{n}").status_code == 200,
                           WAIT)
            wait_until(lambda: poller()["long_polling"] is honoured, WAIT, message=f"long_polling to be {honoured}")
            last = place(order.url)
            wait_until(lambda: requests.get(f"{invoicing.url}/api/invoices/{last}").status_code == 200, WAIT)
            assert poller()["long_polling"] is honoured


def test_post_poll_does_not_wait_out_a_held_long_poll(tmp_path):
    with ServiceProcess("order_service", tmp_path / "order") as order:
        env = {"ORDER_FEED_URL": order.url + "/feed", "POLL_INTERVAL": "5", "LONG_POLL_WAIT": str(WAIT)}
        with ServiceProcess("invoicing_service", tmp_path / "invoicing", env=env) as invoicing:
            first = place(order.url)
            wait_until(lambda: requests.get(f"{invoicing.url}/api/invoices/{first}").status_code == 200, WAIT)
            time.sleep(1)  # the next long poll is held now
            started = time.monotonic()
            response = requests.post(invoicing.url + "/poll", timeout=WAIT + 30)
            assert response.status_code == 200, response.text
            assert time.monotonic() - started < WAIT - 5  # not the held request's 20 s

"""POST /poll cuts the long polls held now (following.py), which then read as 304: "nothing new yet". One long poll
means more: start.ask_origin asks the publisher, with a one-second long poll and the page's own validator, whether
a current page that ends before the position is a cache's older copy; its 304 says "that page is the publisher's",
and the history check then halts the follower for good. That one is never cut. And a pass whose long poll was cut
read nothing: POST /poll, having waited for it, reads the feed itself rather than answer with its 0."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common.feeds.follow.client import FeedClient
from common.feeds.follow.errors import FollowerHalted
from common.feeds.follow.follower import FeedFollower
from common.service import following
from common.service.consumer import FOLLOWER_KEY
from common.service.following import _poll_cutting_long_polls
from invoicing_service.app import create_app as create_invoicing
from tests.support import wait_until
from tests.unit.follower_feed import BASE, MODELS, Recorder, entry_xml, make_db, page_xml


def send_page(handler: BaseHTTPRequestHandler, base: str, count: int, etag: str) -> None:
    """Answer with the current page of orders 1…`count`, its links on `base`'s origin (the follower's own)."""
    body = page_xml(f"{base}/feed", [entry_xml(p) for p in range(1, count + 1)]).replace(BASE, base).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/atom+xml")
    handler.send_header("ETag", etag)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_a_post_poll_cutting_long_polls_never_cuts_the_question_to_the_publisher_into_a_false_halt(tmp_path):
    """start.ask_origin asks the publisher, by a one-second long poll, whether a current page ending before the
    position is a cache's older copy. POST /poll cuts every long poll in flight (following.py), and a cut long
    poll reads as 304: 'the stale copy is the publisher's page' -> the follower halts durably."""
    state = {"stale": False, "asked": threading.Event()}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if state["stale"] and not self.headers.get("Prefer"):
                count, etag = 1, '"old"'  # a front door's cached copy from before entry 2
            else:
                if self.headers.get("Prefer"):
                    state["asked"].set()
                    time.sleep(0.5)  # the publisher's answer on its way (any RTT: POST /poll cuts every 0.1 s)
                count, etag = 2, '"new"'
            send_page(self, f"http://127.0.0.1:{port}", count, etag)

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}/feed"
    db = make_db(tmp_path)
    follower = FeedFollower(url, "test", db, Recorder(), MODELS, event_types={"OrderCreated"},
                            client=FeedClient(origin=url), parse_workers=0)
    try:
        assert follower.poll() == 2
        state["stale"] = True
        outcome = {}

        def scheduled_poll():
            try:
                outcome["handled"] = follower.poll(wait=0)
            except Exception as exc:  # noqa: BLE001
                outcome["error"] = exc

        background = threading.Thread(target=scheduled_poll)
        background.start()
        assert state["asked"].wait(5)
        try:
            _poll_cutting_long_polls(follower, time.monotonic() + 30)  # a POST /poll arriving meanwhile
        except FollowerHalted as exc:
            outcome["post_poll"] = exc  # POST /poll would answer 409
        background.join(10)
        assert follower.load().halted is None, outcome
    finally:
        server.shutdown()
        follower.stop()


class HeldFeed:
    """A feed on a real HTTP server that holds a long poll (Prefer: wait) whose If-None-Match matches its page until
    it is closed: an entry `append()`ed meanwhile wakes no held request, as when a cut wins the race with the wake-up
    (only a read of the feed finds it)."""

    def __init__(self):
        self.count, self.held, self.closed = 1, threading.Event(), threading.Event()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.headers.get("Prefer") and self.headers.get("If-None-Match") == feed.etag:
                    feed.held.set()
                    if feed.closed.wait(20):  # the test is over: its follower hung up long ago
                        return
                if self.headers.get("If-None-Match") == feed.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                send_page(self, feed.base, feed.count, feed.etag)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/feed"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def etag(self) -> str:
        return f'"{self.count}"'

    def append(self) -> None:
        self.count += 1

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def test_post_poll_after_an_entry_is_published_handles_it_even_while_a_long_poll_is_held(monkeypatch):
    """POST /poll cuts the poller's held long poll and waits for its pass; that pass ends on the cut, a 304 that
    read nothing, so POST /poll must read the feed itself and handle the entry published meanwhile."""
    feed = HeldFeed()
    app = create_invoicing({"ORDER_FEED_URL": feed.url, "TESTING": True})
    follower = app.extensions[FOLLOWER_KEY]
    client = app.test_client()
    # POST /poll waits for the pass it cut, however slowly either thread runs: that pass ends only once POST /poll
    # waits at the gate, and POST /poll cuts once and waits in one go (no second try that would find the gate free).
    monkeypatch.setattr(following, "CUT_EVERY", 10.0)
    long_poll = follower.client.fetch

    def ends_once_post_poll_waits(*args, **kwargs):
        page = long_poll(*args, **kwargs)
        wait_until(lambda: follower.gate._waiters, message="POST /poll to wait for the pass it cut")
        return page

    try:
        assert client.post("/poll").get_json()["processed"] == 1
        follower.client.fetch = ends_once_post_poll_waits
        background = threading.Thread(target=lambda: follower.poll(wait=0, long_poll=20))  # the poller's long poll
        background.start()
        assert feed.held.wait(10), "the long poll was not held"
        del follower.client.fetch  # for the passes to come
        feed.append()  # entry 2, which the held request does not see

        answer = client.post("/poll").get_json()

        background.join(10)
        assert answer["processed"] == 1 and answer["position"] == 2, answer
        assert [i["order_id"] for i in client.get("/api/invoices").get_json()] == [1, 2]
    finally:
        feed.close()
        follower.stop()

"""POST /poll cuts the long polls held now (following.py), which then read as 304: "nothing new yet". One long poll
means more: start.ask_origin asks the publisher, with a one-second long poll and the page's own validator, whether
a current page that ends before the position is a cache's older copy; its 304 says "that page is the publisher's",
and the history check then halts the follower for good. That one is never cut."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common.feeds.follow.client import FeedClient
from common.feeds.follow.errors import FollowerHalted
from common.feeds.follow.follower import FeedFollower
from common.service.following import _poll_cutting_long_polls
from tests.unit.follower_feed import BASE, MODELS, Recorder, entry_xml, make_db, page_xml


def test_a_post_poll_cutting_long_polls_never_cuts_the_question_to_the_publisher_into_a_false_halt(tmp_path):
    """start.ask_origin asks the publisher, by a one-second long poll, whether a current page ending before the
    position is a cache's older copy. POST /poll cuts every long poll in flight (following.py), and a cut long
    poll reads as 304: 'the stale copy is the publisher's page' -> the follower halts durably."""
    state = {"stale": False, "asked": threading.Event()}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            url = f"http://127.0.0.1:{port}/feed"
            if state["stale"] and not self.headers.get("Prefer"):
                count, etag = 1, '"old"'  # a front door's cached copy from before entry 2
            else:
                if self.headers.get("Prefer"):
                    state["asked"].set()
                    time.sleep(0.5)  # the publisher's answer on its way (any RTT: POST /poll cuts every 0.1 s)
                count, etag = 2, '"new"'
            entries = [entry_xml(p).replace(BASE, f"http://127.0.0.1:{port}") for p in range(1, count + 1)]
            body = page_xml(url, entries).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

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

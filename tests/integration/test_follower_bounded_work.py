"""Bounded work (issue 10, finding 4): a true deadline per page however slowly bytes drip, pages that would make
parsing slow refused fast, a bounded number of pages per pass, POST /poll that never piles up, /health that
never waits for a pass, and a stop on SIGTERM within 5 s. Figures go to test-output/fault-figures.jsonl."""
from __future__ import annotations

import signal
import threading
import time

import pytest
import requests
from sqlalchemy import update

from common.feeds import FeedFollower
from common.feeds.follow.client import FeedClient, FeedError
from common.service.db import Database
from invoicing_service.handlers import EVENT_TYPES, handle, handle_batch
from invoicing_service.models import Base, tracking
from tests.faults.atom import Entry, Page
from tests.faults.figures import record
from tests.faults.hostile import Drip, HostileFeedServer, Raw
from tests.support import ServiceProcess

ATOM_HEAD = (b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><id>x</id>'
             b'<title>t</title><updated>2026-01-01T00:00:00Z</updated>')


@pytest.fixture
def feed():
    with HostileFeedServer() as server:
        yield server


def make_follower(feed, tmp_path, **kwargs) -> FeedFollower:
    db = Database(f"sqlite:///{tmp_path / 'invoicing.db'}", Base)
    db.create_all()
    return FeedFollower(feed.feed_url, "orders", db, handle, tracking, event_types=EVENT_TYPES,
                        batch_handler=handle_batch, **kwargs)


def page_bytes(feed) -> bytes:
    return Page("/feed", [Entry(1, 1)]).xml(feed.url).encode()


@pytest.mark.parametrize("drip_headers", [False, True], ids=["body", "headers"])
def test_a_page_dripped_a_byte_at_a_time_ends_at_the_deadline(feed, drip_headers):
    feed.set_routes({"/feed": Drip(page_bytes(feed), interval=0.3, drip_headers=drip_headers)})
    client = FeedClient(read_timeout=10, deadline=3, origin=feed.feed_url)
    started = time.monotonic()
    with pytest.raises(FeedError, match="not received within 3s"):
        client.fetch(feed.feed_url)
    took = time.monotonic() - started
    record("drip_deadline", dripped="headers" if drip_headers else "body", deadline_s=3,
           byte_interval_s=0.3, ended_after_s=round(took, 2))
    assert took < 3 + 2  # the deadline, not the 10 s read timeout nor the page's ~4 min


def test_ten_mib_of_attributes_is_refused_fast(feed, tmp_path):
    bomb = ATOM_HEAD + b"<entry " + b" ".join(b'a%d="v"' % i for i in range(880_000)) + b"/></feed>"
    assert len(bomb) >= 10 * 1024 * 1024 - 200_000
    feed.set_routes({"/feed": Raw(bomb[: 10 * 1024 * 1024])})
    many = ATOM_HEAD + b'<x a="1" b="2"/>' * 650_000 + b"</feed>"
    follower = make_follower(feed, tmp_path)
    figures = {}
    for name, body in (("one element", bomb), ("many elements", many)):
        feed.set_routes({"/feed": Raw(body[: 10 * 1024 * 1024] if name == "one element" else body)})
        started = time.monotonic()
        with pytest.raises(FeedError, match="attributes|elements"):
            follower.poll()
        figures[name] = round(time.monotonic() - started, 2)
    record("attribute_bomb", page_bytes=len(bomb), refused_after_s=figures, target_s=2)
    assert max(figures.values()) < 2 * 2  # target 2 s, measured on a shared machine: see the figures


def test_an_endless_next_archive_chain_ends_the_pass_after_a_bounded_number_of_pages(feed, tmp_path):
    def chain(path: str):
        if not path.startswith("/feed/pages/"):
            return None
        k = int(path.rsplit("/", 1)[1])
        return Page(path, [Entry(k, k)], prev_archive=f"/feed/pages/{k - 1}" if k > 1 else None,
                    next_archive=f"/feed/pages/{k + 1}", archive=True)
    feed.fallback = chain
    feed.set_routes({"/feed": Page("/feed", [Entry(1, 1)])})
    follower = make_follower(feed, tmp_path, pages_per_pass=300)
    follower.poll()
    with follower.db.write() as s:  # bookmark on page 1 of a chain that never ends
        s.execute(update(tracking.Tracking).values(bookmark=feed.url + "/feed/pages/1"))
    started = time.monotonic()
    handled = follower.poll()
    took = time.monotonic() - started
    record("endless_chain", pages_per_pass=300, handled=handled, seconds=round(took, 1))
    assert handled == 299 and follower.caught_up is False and follower.last_error is None
    assert follower.load().position == 300  # committed as it went
    assert follower.poll() == 299  # the next pass goes on from there (its bookmark's page, then 299 more)
    assert follower.load().position == 599


def test_an_endless_prev_archive_chain_is_given_up_with_an_error(feed, tmp_path):
    feed.fallback = lambda path: Page(path, [Entry(10**6 - int(path.rsplit("/", 1)[1]), 1)],
                                      prev_archive=f"/feed/pages/{int(path.rsplit('/', 1)[1]) + 1}",
                                      next_archive="/feed", archive=True) if path.startswith("/feed/pages/") else None
    feed.set_routes({"/feed": Page("/feed", [Entry(10**6, 1)], prev_archive="/feed/pages/1")})
    follower = make_follower(feed, tmp_path, max_back_pages=200)
    with pytest.raises(FeedError, match="more than 200 pages walked back"):
        follower.poll()
    assert follower.last_error and sum(feed.hits.values()) <= 202  # /feed, 200 pages, one read ahead


@pytest.fixture
def slow_consumer(feed, tmp_path):
    """A real invoicing process following a feed whose only page takes about 8 s to arrive."""
    body = page_bytes(feed)
    feed.set_routes({"/feed": Drip(body, interval=8 / (len(body) / 100), step=100)})
    process = ServiceProcess("invoicing_service", tmp_path / "invoicing",
                             env={"ORDER_FEED_URL": feed.feed_url, "POLL_INTERVAL": "0"})
    with process:
        yield process


def test_concurrent_polls_never_pile_up_and_health_answers_within_a_second(slow_consumer):
    answers: list[int] = []
    polls = [threading.Thread(target=lambda: answers.append(
        requests.post(slow_consumer.url + "/poll", timeout=120).status_code)) for _ in range(8)]
    for t in polls:
        t.start()
    latencies = []
    while any(t.is_alive() for t in polls):
        started = time.monotonic()
        response = requests.get(slow_consumer.url + "/health", timeout=10)
        latencies.append(time.monotonic() - started)
        assert response.status_code == 200
        time.sleep(0.1)
    record("health_under_concurrent_polls", polls=8, answers=sorted(answers), health_samples=len(latencies),
           health_max_s=round(max(latencies), 3))
    assert max(latencies) < 1.0
    # One pass; the seven others waited for it (CONTRACT.md: at most 30 s) and took its outcome. Past
    # passgate.MAX_WAITERS waiting callers a caller is told 202 at once (tests/unit, with a small limit).
    assert answers.count(200) == 8


def test_sigterm_during_a_pass_stops_the_process_within_five_seconds(slow_consumer):
    def poll():
        try:
            requests.post(slow_consumer.url + "/poll", timeout=60)
        except requests.ConnectionError:
            pass  # the process stopped before answering: what SIGTERM is for

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(2)  # the pass is reading the dripped page
    started = time.monotonic()
    slow_consumer.proc.send_signal(signal.SIGTERM)
    code = slow_consumer.proc.wait(timeout=30)
    took = time.monotonic() - started
    poller.join(timeout=30)
    record("sigterm_mid_pass", exit_code=code, stopped_after_s=round(took, 2))
    assert took < 5 and code == 0

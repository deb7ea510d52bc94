"""Broken and hostile feeds against a real consumer process (issue 4 item 6).

A test server plays the order feed: not XML, truncated XML, XXE (local file and external DTD), billion laughs,
50 MB pages, link loops, poison entries, unknown event types, duplicated entries. The consumer must stay up,
answer every poll within seconds, leak nothing, bound its memory, never loop, dead-letter what it cannot handle
after bounded retries, and let a dead letter be retried once the publisher serves a corrected document.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.faults import hostile
from tests.faults.atom import Entry, Page, order_document, paged_feed
from tests.faults.figures import record
from tests.faults.hostile import HostileFeedServer, Raw
from tests.support import ServiceProcess

SECRET = "ATOMSHOP-XXE-SECRET-7f3a9c"
PEAK_RSS_LIMIT_KB = 400 * 1024


def peak_rss_kb(process: ServiceProcess) -> int:
    """VmHWM: the most memory the process ever had resident."""
    for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def everything_the_consumer_shows(consumer: ServiceProcess) -> str:
    """Its JSON and HTML answers plus the bytes of its database files."""
    texts = [requests.get(consumer.url + path, timeout=10).text
             for path in ("/health", "/api/invoices", "/api/dead-letters", "/", "/dead-letters")]
    for file in (consumer.workdir / "data").glob("*"):
        if file.is_file():
            texts.append(file.read_bytes().decode("latin-1"))
    return "\n".join(texts)


@pytest.fixture
def feed():
    with hostile.HostileFeedServer() as server:
        yield server


@pytest.fixture
def consumer(feed, tmp_path):
    process = ServiceProcess("invoicing_service", tmp_path / "invoicing",
                             env={"ORDER_FEED_URL": feed.feed_url, "POLL_INTERVAL": "0"})
    with process:
        yield process


def poll(consumer: ServiceProcess) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = requests.post(consumer.url + "/poll", timeout=60)
    return response.status_code, response.json(), time.monotonic() - started


def health(consumer: ServiceProcess) -> dict:
    response = requests.get(consumer.url + "/health", timeout=10)
    assert response.status_code == 200
    return response.json()


def broken_feeds(feed: HostileFeedServer, secret_path: str) -> dict[str, dict]:
    cycle = {"/feed": Page("/feed", [Entry(11, 11)], prev_archive="/feed/pages/2"),
             "/feed/pages/2": Page("/feed/pages/2", [Entry(p, p) for p in range(6, 11)],
                                   prev_archive="/feed/pages/1", next_archive="/feed", archive=True),
             "/feed/pages/1": Page("/feed/pages/1", [Entry(p, p) for p in range(3, 6)],
                                   prev_archive="/feed/pages/2", next_archive="/feed/pages/2", archive=True)}
    return {
        "not_xml": hostile.not_xml(),
        "truncated_xml": hostile.truncated_xml(),
        "xxe_local_file": hostile.xxe_local_file(secret_path),
        "xxe_external_dtd": hostile.xxe_external_dtd(feed.url),
        "billion_laughs": hostile.billion_laughs(),
        "huge_page_declared": hostile.huge_page(50 * 1024 * 1024, declare_length=True),
        "huge_page_undeclared": hostile.huge_page(50 * 1024 * 1024, declare_length=False),
        "link_loop_cycle": cycle,
        "link_loop_self": hostile.link_loop("self"),
        "error_status": {"/feed": Raw(b"<html>oops</html>", 500, "text/html")},
        "html_instead_of_atom": {"/feed": Raw(b"<!doctype html><html><body>login</body></html>", 200, "text/html")},
        "empty_body": {"/feed": Raw(b"")},
        "not_utf8": {"/feed": Raw(Page("/feed", [Entry(1, 1)]).xml("http://x").encode("utf-16"))},
    }


def test_broken_and_hostile_feeds_leave_the_consumer_up_bounded_and_leak_free(feed, consumer, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    scenarios = broken_feeds(feed, str(secret))
    durations = {}
    for name, routes in scenarios.items():
        feed.set_routes(routes)
        feed.reset_counts()
        status, body, seconds = poll(consumer)
        durations[name] = round(seconds, 2)
        assert status in (502, 503), (name, status, body)
        assert "error" in body, (name, body)
        assert seconds < (10 if name.startswith("huge") else 5), (name, seconds)
        state = health(consumer)
        assert state["position"] == 0 and state["last_error"], (name, state)
        assert sum(feed.hits.values()) <= 5, (name, dict(feed.hits))  # never loops
        assert feed.hits["/evil.dtd"] == 0 and feed.hits["/evil-param.dtd"] == 0, "an external DTD was fetched"
        if name.startswith("huge"):
            assert feed.bytes_sent["/feed"] < 50 * 1024 * 1024, "the consumer read the whole 50 MB page"
    assert SECRET not in everything_the_consumer_shows(consumer)
    peak = peak_rss_kb(consumer)
    assert peak < PEAK_RSS_LIMIT_KB, f"peak RSS {peak} kB"

    # Still fully working: a good feed is followed as soon as it is served.
    feed.set_routes(hostile.good_feed(12, size=5))
    status, body, _ = poll(consumer)
    assert status == 200 and body["processed"] == 12
    state = health(consumer)
    assert state["position"] == 12 and state["last_error"] is None
    assert SECRET not in everything_the_consumer_shows(consumer)
    record("hostile_feeds", hostile_inputs=len(scenarios), kinds=sorted(scenarios), poll_seconds=durations,
           peak_rss_mb=round(peak / 1024, 1), leaked=0, consumer_restarts=consumer.starts - 1)


def test_poison_entries_are_dead_lettered_after_bounded_retries_and_unknown_types_skipped_and_counted(
        feed, consumer):
    base = feed.url
    good = [Entry(p, p) for p in range(1, 5)]
    lacking = order_document(6, base)
    del lacking["lines"]
    entries = good + [
        Entry(5, 5, content="{this is not json"),
        Entry(6, 6, content=json.dumps(lacking)),
        Entry(7, 7, event_type="OrderGiftWrapped"),  # a type no follower knows
        Entry(8, 8), Entry(8, 8),  # the same entry twice on one page
        Entry(9, 8),  # the same order again at a later position
        Entry(10, 10),
    ]
    routes = paged_feed(entries, size=5)
    routes["/api/orders/5"] = Raw(json.dumps(order_document(5, base)).encode(), content_type="application/json")
    routes["/api/orders/6"] = Raw(b'{"id": 6, "still": "broken"}', content_type="application/json")
    feed.set_routes(routes)

    statuses, polls = [], 0
    while health(consumer)["position"] < 10:
        polls += 1
        assert polls <= 10, f"the consumer does not get past the poison entries: {health(consumer)}"
        status, body, seconds = poll(consumer)
        statuses.append(status)
        assert status == 200 and seconds < 5, (status, body)
    state = health(consumer)
    assert state["dead_letters"] == 2 and "dead_lettered" not in state and state["skipped"] == 1
    assert state["handled"] == 7 and state["last_error"] is None, state
    invoices = requests.get(consumer.url + "/api/invoices", timeout=10).json()
    assert [i["order_id"] for i in invoices] == [1, 2, 3, 4, 8, 10]
    letters = requests.get(consumer.url + "/api/dead-letters", timeout=10).json()
    assert [(d["position"], d["attempts"]) for d in letters] == [(5, 3), (6, 3)]
    assert "JSON" in letters[0]["reason"] and "lines" in letters[1]["reason"]
    page = requests.get(consumer.url + "/dead-letters", timeout=10)
    assert page.status_code == 200 and "not JSON" in page.text and "lines" in page.text

    # The publisher now serves a corrected document for order 5: the retry stores its invoice, the letter goes.
    retried = requests.post(f"{consumer.url}/api/dead-letters/{letters[0]['id']}/retry", timeout=10)
    assert retried.status_code == 200, retried.text
    # Order 6 is still broken at its source: the retry fails with 422 and the dead letter stays, counted.
    again = requests.post(f"{consumer.url}/api/dead-letters/{letters[1]['id']}/retry", timeout=10)
    assert again.status_code == 422 and "error" in again.json()
    assert requests.post(f"{consumer.url}/api/dead-letters/999999/retry", timeout=10).status_code == 404
    letters = requests.get(consumer.url + "/api/dead-letters", timeout=10).json()
    assert [(d["position"], d["attempts"]) for d in letters] == [(6, 4)]
    invoices = requests.get(consumer.url + "/api/invoices", timeout=10).json()
    assert [i["order_id"] for i in invoices] == [1, 2, 3, 4, 5, 8, 10]
    assert requests.get(consumer.url + "/api/invoices/5", timeout=10).json()["total"] == "42.00"
    # Polling on changes nothing: nothing is handled twice.
    status, body, _ = poll(consumer)
    assert status == 200 and body["processed"] == 0
    assert len(requests.get(consumer.url + "/api/invoices", timeout=10).json()) == 7
    record("poison_entries", hostile_inputs=5, polls_to_get_past=polls, dead_lettered=2, retried_ok=1,
           retried_still_broken=1, unknown_type_skipped=1, duplicated_entries_handled_once=2, lost=0, duplicated=0)

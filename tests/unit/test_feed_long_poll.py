"""Long polling of the current page (RFC 7240 `Prefer: wait`), in process: held, released, capped, refused."""
from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest

from common.feeds.publish.longpoll import applied_wait, requested_wait
from common.feeds.publish.publisher import PUBLISHER_KEY
from order_service import create_app
from tests.unit.test_feed_http import order_body


@pytest.fixture
def app(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}", "FEED_PAGE_SIZE": 3})
    yield app
    app.extensions[PUBLISHER_KEY].close()


def current_etag(client) -> str:
    return client.get("/feed").headers["ETag"]


def test_the_wait_preference_is_read_as_rfc_7240_writes_it():
    assert requested_wait(["wait=10"]) == 10
    assert requested_wait(["respond-async, wait=5"]) == 5
    assert requested_wait(['Wait = "7" ; foo=bar']) == 7
    assert requested_wait(["handling=lenient", "wait=3, wait=9"]) == 3
    assert requested_wait(["wait=soon"]) is None
    assert requested_wait(["wait=soon, wait=5"]) is None  # the first one named counts, malformed or not
    assert requested_wait(["waitlist=yes, wait=10"]) == 10  # another preference that begins with "wait"
    assert requested_wait(["return=minimal"]) is None
    assert requested_wait([]) is None
    assert applied_wait(3600) == 30 and applied_wait(20) == 20 and applied_wait(2.9) == 2


def test_a_validator_that_does_not_match_is_answered_at_once_without_preference_applied(app):
    client = app.test_client()
    response = client.get("/feed", headers={"Prefer": "wait=20", "If-None-Match": '"stale"'})
    assert response.status_code == 200
    assert "Preference-Applied" not in response.headers


def test_without_prefer_a_matching_validator_gets_304_at_once(app):
    client = app.test_client()
    response = client.get("/feed", headers={"If-None-Match": current_etag(client)})
    assert response.status_code == 304
    assert "Preference-Applied" not in response.headers


def test_a_held_request_ends_with_304_when_nothing_changes(app):
    client = app.test_client()
    etag = current_etag(client)
    response = client.get("/feed", headers={"Prefer": "wait=1", "If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["Preference-Applied"] == "wait=1"
    assert response.headers["ETag"] == etag


def test_the_server_caps_the_wait_and_says_what_it_applied(app):
    app.extensions[PUBLISHER_KEY].max_wait = 1
    client = app.test_client()
    response = client.get("/feed", headers={"Prefer": "wait=3600", "If-None-Match": current_etag(client)})
    assert response.status_code == 304
    assert response.headers["Preference-Applied"] == "wait=1"


def test_a_held_request_is_answered_with_the_new_page_when_an_order_is_placed(app):
    client = app.test_client()
    etag = current_etag(client)
    answers = []
    holder = threading.Thread(target=lambda: answers.append(
        (app.test_client().get("/feed", headers={"Prefer": "wait=20", "If-None-Match": etag}), time.monotonic())))
    holder.start()
    time.sleep(0.3)  # let it be held
    assert holder.is_alive(), "the request was not held"
    placed = client.post("/api/orders", json=order_body())
    assert placed.status_code == 201
    holder.join(20)
    response, _ = answers[0]
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "wait=20"
    assert response.headers["ETag"] != etag
    assert f"/api/orders/{placed.get_json()['id']}".encode() in response.data
    # The woken answer is the same page a plain GET gets now.
    assert response.headers["ETag"] == current_etag(client)


def test_closing_the_publisher_answers_every_held_request_at_once(app):
    client = app.test_client()
    etag = current_etag(client)
    answers = []
    holders = [threading.Thread(target=lambda: answers.append(app.test_client().get(
        "/feed", headers={"Prefer": "wait=20", "If-None-Match": etag}).status_code)) for _ in range(5)]
    for holder in holders:
        holder.start()
    time.sleep(0.3)
    app.extensions[PUBLISHER_KEY].close()
    for holder in holders:
        holder.join(10)
    assert answers == [304] * 5


def test_an_append_committed_between_the_head_read_and_the_wait_answers_the_held_request(app, tmp_path):
    publisher = app.extensions[PUBLISHER_KEY]
    client = app.test_client()
    etag = current_etag(client)
    # A listener that neither re-checks nor wakes for the first waiter, as LISTEN on PostgreSQL does not: only
    # the request's own re-check can find the append.
    publisher.listener.recheck = 60
    publisher.signal.on_first_waiter(lambda: None)
    real_wait = publisher.signal.wait

    def wait_after_another_process_appends(beyond, timeout, **kwargs):
        with sqlite3.connect(tmp_path / "orders.db") as other:  # a commit on a connection none of the app's
            stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            other.execute("INSERT INTO notifications (position, event_type, created, document) VALUES (?, ?, ?, ?)",
                          (beyond + 1, "OrderCreated", stamp, '{"id": 99}'))
        return real_wait(beyond, timeout, **kwargs)
    publisher.signal.wait = wait_after_another_process_appends
    started = time.monotonic()
    response = client.get("/feed", headers={"Prefer": "wait=10", "If-None-Match": etag})
    assert response.status_code == 200
    assert response.headers["ETag"] != etag
    # Answered by the append, not by the end of the wait (which reads the head again and answers 200 too).
    assert time.monotonic() - started < 5

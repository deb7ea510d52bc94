"""The feed head in memory: a 304 from memory, never for a page another connection or process has changed."""
from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from common.feeds.publish.head import FeedHead
from order_service import create_app
from tests.unit.test_feed_http import SIZE, parse, place


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                       "FEED_PAGE_SIZE": SIZE})


@pytest.fixture
def client(app):
    return app.test_client()


def statements_during(app, action) -> list[str]:
    """SQL statements the app's engine executes while `action` runs."""
    seen: list[str] = []
    engine = app.extensions["atomshop.db"].engine

    def record(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_304_for_the_current_page_runs_no_sql(app, client):
    place(client, 2)
    etag = client.get("/feed").headers["ETag"]
    client.get("/feed", headers={"If-None-Match": etag})  # the head is in memory from here on

    def revalidate():
        assert client.get("/feed", headers={"If-None-Match": etag}).status_code == 304
    assert statements_during(app, revalidate) == []


def test_an_entry_committed_by_another_connection_is_never_hidden_by_a_304(app, client, tmp_path):
    place(client, 1)
    first = client.get("/feed")
    etag = first.headers["ETag"]
    assert client.get("/feed", headers={"If-None-Match": etag}).status_code == 304
    # Another process's commit, as far as this app can tell: a connection that is none of its own.
    row = next(iter(parse(first.data)[1]))
    with sqlite3.connect(tmp_path / "orders.db") as other:
        stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        other.execute("INSERT INTO notifications (position, event_type, created, document) VALUES (?, ?, ?, ?)",
                      (row["position"] + 1, "OrderCreated", stamp, '{"id": 99}'))
    again = client.get("/feed", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert [e["position"] for e in parse(again.data)[1]][0] == row["position"] + 1


def test_an_order_placed_through_the_app_changes_the_etag_at_once(client):
    place(client, 1)
    etag = client.get("/feed").headers["ETag"]
    place(client, 1)
    assert client.get("/feed", headers={"If-None-Match": etag}).status_code == 200


class CountingRead:
    def __init__(self, values):
        self.values = list(values)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.values[min(self.calls, len(self.values)) - 1]


class QuietWatch:
    """A watch that never reports a change: only changed() and max_age make the head read again."""

    def moved(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_the_head_is_read_once_while_nothing_signals_a_change():
    read = CountingRead([(1, None)])
    head = FeedHead(read, lambda _head: QuietWatch(), max_age=60)
    assert [head.get() for _ in range(5)] == [(1, None)] * 5
    assert read.calls == 1


def test_changed_makes_the_next_get_read_the_head_again():
    read = CountingRead([(1, None), (2, None)])
    head = FeedHead(read, lambda _head: QuietWatch(), max_age=60)
    assert head.get() == (1, None)
    head.changed()
    assert head.get() == (2, None)


def test_the_head_is_read_again_after_max_age_whatever_the_watch_says():
    read = CountingRead([(1, None), (2, None)])
    head = FeedHead(read, lambda _head: QuietWatch(), max_age=0)
    assert head.get() == (1, None)
    assert head.get() == (2, None)


def test_a_change_signalled_during_a_read_is_not_lost():
    gate, release = threading.Event(), threading.Event()
    values = iter([(1, None), (2, None)])

    def slow_read():
        value = next(values)
        if value == (1, None):
            gate.set()
            release.wait(5)
        return value
    head = FeedHead(slow_read, lambda _head: QuietWatch(), max_age=60)
    reader = threading.Thread(target=head.get)
    reader.start()
    gate.wait(5)
    head.changed()  # an append committed while the first read was under way
    release.set()
    reader.join(5)
    assert head.get() == (2, None)


def test_an_in_memory_sqlite_database_reads_the_head_every_time():
    from sqlalchemy import create_engine

    from common.feeds.publish.append_signal import AppendSignal
    from common.feeds.publish.notify import AppendListener

    engine = create_engine("sqlite:///:memory:")
    listener = AppendListener(AppendSignal(), lambda: None, engine, "atomshop_notifications")
    read = CountingRead([(1, None)])
    head = FeedHead(read, listener.watch, max_age=60)
    assert [head.get() for _ in range(3)] == [(1, None)] * 3
    assert read.calls == 3

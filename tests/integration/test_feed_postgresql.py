"""The order feed on a real PostgreSQL: positions assigned under a lock, visible in order, gap-free."""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import DeclarativeBase

from common.feeds.publish.log import TICK, NotificationLog, NotificationMixin, dumps
from common.service.db import Database
from order_service import create_app
from order_service.models import Notification
from tests.unit.test_feed_http import order_body, parse, walk
from tests.unit.test_feed_rfc4287 import assert_valid_atom

WRITERS, ORDERS_EACH = 4, 8
COMMIT_DELAY = 0.05  # seconds an odd position's transaction stays open after the position is assigned


def delay_commits(monkeypatch) -> None:
    """Make each odd position's transaction sleep between assignment and commit, i.e. inside the append lock."""
    inner = NotificationLog.append  # whatever is installed: a test may plant a broken append first

    def slow_append(self, session, event_type, document):
        row = inner(self, session, event_type, document)
        if row.position % 2:
            # Without the lock, the next position's writer commits during this sleep: n+1 visible before n.
            time.sleep(COMMIT_DELAY)
        return row
    monkeypatch.setattr(NotificationLog, "append", slow_append)


def write_concurrently_while_reading(app) -> list[str]:
    """Place WRITERS × ORDERS_EACH orders from parallel clients while a reader checks what becomes visible.

    Each writer is an app of its own on the same database, standing for a process of its own: within one process
    orders placed at once share a transaction (group commit), so only other processes' transactions race for the
    lock."""
    db = app.extensions["atomshop.db"]
    writer_apps = [create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"],
                               "FEED_PAGE_SIZE": app.config["FEED_PAGE_SIZE"]}) for _ in range(WRITERS)]
    writers_done = threading.Event()
    problems: list[str] = []

    def write(writer_app, count):
        client = writer_app.test_client()
        for _ in range(count):
            response = client.post("/api/orders", json=order_body())
            if response.status_code != 201:
                problems.append(f"POST answered {response.status_code}: {response.get_data(as_text=True)}")

    def read():
        # A reader must never see position n while some position below n is still missing.
        while not writers_done.is_set():
            with db.read() as session:
                positions = list(session.scalars(select(Notification.position).order_by(Notification.position)))
            if positions != list(range(1, len(positions) + 1)):
                problems.append(f"visible out of order: {positions}")
                return

    writers = [threading.Thread(target=write, args=(writer_app, ORDERS_EACH)) for writer_app in writer_apps]
    reader = threading.Thread(target=read)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    writers_done.set()
    reader.join()
    for writer_app in writer_apps:
        writer_app.extensions["atomshop.db"].dispose()
    return problems


def test_concurrent_orders_on_postgresql_become_visible_in_position_order(postgres, monkeypatch):
    """Writers hold their transactions open inside the lock, so only the lock keeps n+1 from showing before n."""
    delay_commits(monkeypatch)
    app = create_app({"TESTING": True, "DATABASE_URL": postgres.create_database(), "FEED_PAGE_SIZE": 7})
    db = app.extensions["atomshop.db"]
    problems = write_concurrently_while_reading(app)
    assert not problems, problems[:3]

    client = app.test_client()
    pages = walk(client)
    entries = [entry for _, response in pages for entry in parse(response.data)[1]]
    assert sorted(e["position"] for e in entries) == list(range(1, WRITERS * ORDERS_EACH + 1))
    for _, response in pages:
        assert_valid_atom(response.data)
    with db.read() as session:
        times = list(session.scalars(select(Notification.created).order_by(Notification.position)))
    assert times == sorted(times)
    db.dispose()


def append_without_the_lock(self, session, event_type, document):
    """NotificationLog.append with its lock removed; positions from a sequence, so no unique-key clash ends it."""
    position = session.scalar(text("SELECT nextval('unlocked_positions')"))
    row = self.model(position=position, event_type=event_type, created=self.clock(), document=dumps(document))
    session.add(row)
    session.flush()
    return row


def test_the_in_order_check_fires_when_positions_are_appended_without_the_lock(postgres, monkeypatch):
    """The check above can fail: plain removal of the lock only shows as unique-key 500s, this variant as disorder."""
    monkeypatch.setattr(NotificationLog, "append", append_without_the_lock)
    delay_commits(monkeypatch)
    app = create_app({"TESTING": True, "DATABASE_URL": postgres.create_database(), "FEED_PAGE_SIZE": 7})
    db = app.extensions["atomshop.db"]
    with db.write() as session:
        session.execute(text("CREATE SEQUENCE unlocked_positions"))
    problems = write_concurrently_while_reading(app)
    assert any(p.startswith("visible out of order") for p in problems), problems[:3]
    assert not [p for p in problems if p.startswith("POST")]  # the disorder alone is what the check caught
    db.dispose()


def test_an_order_placed_by_another_process_ends_the_304s_of_every_process(postgres):
    """Two apps on one database stand for two gunicorn workers: B's head in memory learns of A's append by NOTIFY."""
    from tests.support import wait_until
    from tests.unit.test_feed_head import statements_during

    url = postgres.create_database()
    a = create_app({"TESTING": True, "DATABASE_URL": url, "FEED_PAGE_SIZE": 7})
    b = create_app({"TESTING": True, "DATABASE_URL": url, "FEED_PAGE_SIZE": 7})
    a_client, b_client = a.test_client(), b.test_client()
    assert a_client.post("/api/orders", json=order_body()).status_code == 201
    etag = b_client.get("/feed").headers["ETag"]
    wait_until(lambda: not b.extensions["atomshop.publisher"].head._current_watch().moved(), message="B listening")
    assert b_client.get("/feed", headers={"If-None-Match": etag}).status_code == 304

    def revalidate():
        assert b_client.get("/feed", headers={"If-None-Match": etag}).status_code == 304
    assert statements_during(b, revalidate) == []  # from memory: no query, not even pool_pre_ping's

    assert a_client.post("/api/orders", json=order_body()).status_code == 201
    wait_until(lambda: b_client.get("/feed", headers={"If-None-Match": etag}).status_code == 200, timeout=5,
               message="B to see A's order")
    for app in (a, b):
        app.extensions["atomshop.publisher"].close()  # its listener, which the head listens through
        app.extensions["atomshop.db"].dispose()


def test_a_publishing_process_listens_on_one_connection_for_its_head_and_its_long_polls(postgres):
    """The head in memory (304s) and the held long polls hear of appends through the same LISTEN connection."""
    import psycopg

    from tests.support import wait_until

    url = postgres.create_database()
    app = create_app({"TESTING": True, "DATABASE_URL": url, "FEED_PAGE_SIZE": 7})
    publisher = app.extensions["atomshop.publisher"]
    client = app.test_client()
    try:
        etag = client.get("/feed").headers["ETag"]  # the head's first read
        held = client.get("/feed", headers={"Prefer": "wait=1", "If-None-Match": etag})  # a long poll
        assert held.status_code == 304 and held.headers["Preference-Applied"] == "wait=1"
        database = url.rsplit("/", 1)[1]

        def listening() -> int:
            with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE "
                                    "'LISTEN %%'", (database,)).fetchone()[0]
        wait_until(lambda: listening() >= 1, message="the process to listen")
        time.sleep(0.5)  # a second listener, if there were one, would be connected by now
        assert listening() == 1
    finally:
        publisher.close()
        app.extensions["atomshop.db"].dispose()


# On PostgreSQL the INSERT itself works out the position and the stamp from the newest row (one round trip fewer
# under the lock): the same rules as tests/unit/test_publisher_log.py checks on SQLite.

class _Base(DeclarativeBase):
    pass


class _Note(NotificationMixin, _Base):
    pass


def _appended_times(postgres, *clocks) -> list[tuple[int, datetime]]:
    """Append one notification per clock (each a log of its own, as another process's), return (position, created)."""
    db = Database(postgres.create_database(), _Base)
    db.create_all()
    try:
        for clock in clocks:
            with db.write() as session:
                NotificationLog(_Note, clock=clock).append(session, "Thing", {})
        with db.read() as session:
            return [(r.position, r.created) for r in reversed(NotificationLog(_Note).between(session, 1, 100))]
    finally:
        db.dispose()


def test_postgresql_stamps_each_entry_strictly_after_the_previous_one_whatever_the_clocks_say(postgres):
    start = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    appended = _appended_times(postgres, lambda: start, lambda: start - timedelta(hours=1), lambda: start,
                               lambda: start + timedelta(seconds=1))
    assert appended == [(1, start), (2, start + TICK), (3, start + 2 * TICK), (4, start + timedelta(seconds=1))]
    assert all(created.tzinfo is not None for _, created in appended)


def test_postgresql_append_returns_the_position_and_stamp_it_wrote(postgres):
    db = Database(postgres.create_database(), _Base)
    db.create_all()
    moment = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    log = NotificationLog(_Note, clock=lambda: moment)
    try:
        with db.write() as session:
            first = log.append(session, "Thing", {"n": 1})
        with db.write() as session:
            second = log.append(session, "Thing", '{"n": 2}')
        assert (first.position, first.created, second.position, second.created) == (1, moment, 2, moment + TICK)
        assert log.now() == moment + TICK  # what was stamped counts as read: Last-Modified never goes back
        with db.read() as session:
            assert [json.loads(r.document) for r in reversed(log.between(session, 1, 2))] == [{"n": 1}, {"n": 2}]
    finally:
        db.dispose()


def test_postgresql_appends_many_at_once_under_the_lock_gap_free_among_single_appends(postgres):
    db = Database(postgres.create_database(), _Base)
    db.create_all()
    moment = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    log = NotificationLog(_Note, clock=lambda: moment)

    def writer(worker):
        for n in range(4):
            with db.write() as session:
                if (worker + n) % 2:
                    log.append_many(session, [("Thing", {"worker": worker, "k": k}) for k in range(3)])
                else:
                    log.append(session, "Thing", {"worker": worker, "k": 0})

    try:
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with db.read() as session:
            rows = list(reversed(log.between(session, 1, 100)))
        assert [r.position for r in rows] == list(range(1, 33))  # 8 single appends, 8 batches of 3
        assert [r.created for r in rows] == [moment + n * TICK for n in range(32)]
    finally:
        db.dispose()


@contextmanager
def archive_served(postgres, orders: int):
    """An order service on PostgreSQL (pages of 2) with `orders` placed: (client, publisher, db, archive page 1
    as first rendered and stored)."""
    app = create_app({"TESTING": True, "DATABASE_URL": postgres.create_database(), "FEED_PAGE_SIZE": 2})
    publisher, db = app.extensions["atomshop.publisher"], app.extensions["atomshop.db"]
    try:
        client = app.test_client()
        for _ in range(orders):
            assert client.post("/api/orders", json=order_body()).status_code == 201
        yield client, publisher, db, client.get("/feed/pages/1")
    finally:
        publisher.close()
        db.dispose()


def terminate(db: Database, pids: list[int]) -> None:
    """End the server's side of these connections, as a restart or a failover does."""
    with db.engine.connect() as conn:
        for pid in pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


def test_archive_pages_are_read_without_a_transaction_and_survive_the_server_dropping_the_connection(postgres):
    with archive_served(postgres, orders=5) as (client, publisher, db, rendered):
        publisher.cache.clear()
        assert client.get("/feed/pages/1").data == rendered.data  # now from the table, on the archive reader

        reader = publisher.archives.engine
        assert reader is not db.engine
        pooled = reader.raw_connection()
        autocommit, pid = pooled.dbapi_connection.autocommit, pooled.dbapi_connection.info.backend_pid
        pooled.close()
        assert autocommit, "one round trip per read: no BEGIN, no ROLLBACK"
        # The server drops the reader's pooled connection (a restart, a failover): it pings no more, so the read
        # itself meets the dead connection and must try once more on a new one.
        terminate(db, [pid])
        publisher.cache.clear()

        again = client.get("/feed/pages/1")

        assert again.status_code == 200 and again.data == rendered.data


def test_an_archive_read_after_a_server_restart_finds_a_live_connection_though_every_pooled_one_is_dead(postgres):
    with archive_served(postgres, orders=3) as (client, publisher, db, rendered):
        reader = publisher.archives.engine
        held = [reader.raw_connection() for _ in range(3)]  # three idle in the pool once given back, as after a
        pids = [connection.dbapi_connection.info.backend_pid for connection in held]  # few concurrent readers
        for connection in held:
            connection.close()
        terminate(db, pids)  # a restart drops them all
        publisher.cache.clear()

        again = client.get("/feed/pages/1")

        assert again.status_code == 200 and again.data == rendered.data

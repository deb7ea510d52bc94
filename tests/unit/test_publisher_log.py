"""The notification log: gap-free positions, time order == position order, the page cache."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import DeclarativeBase

from common.feeds.publish import clock as clock_module
from common.feeds.publish.clock import SteadyClock
from common.feeds.publish.log import NotificationLog, NotificationMixin
from common.feeds.publish.publisher import PageCache
from common.service.db import Database


class Base(DeclarativeBase):
    pass


class Note(NotificationMixin, Base):
    pass


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'log.db'}", Base)
    database.create_all()
    yield database
    database.dispose()


def test_positions_start_at_one_and_have_no_gaps(db):
    log = NotificationLog(Note)
    for n in range(5):
        with db.write() as session:
            log.append(session, "Thing", {"n": n})
    with db.read() as session:
        rows = log.between(session, 1, 10)
        assert [r.position for r in rows] == [5, 4, 3, 2, 1]
        assert [json.loads(r.document)["n"] for r in rows] == [4, 3, 2, 1, 0]
        assert log.last(session)[0] == 5


def test_a_rolled_back_append_leaves_no_gap(db):
    log = NotificationLog(Note)
    with db.write() as session:
        log.append(session, "Thing", {"n": 1})

    def append_then_fail() -> None:
        with db.write() as session:
            log.append(session, "Thing", {"n": 2})
            raise RuntimeError("the unit of work fails after the append")

    with pytest.raises(RuntimeError, match="fails after the append"):
        append_then_fail()
    with db.write() as session:
        assert log.append(session, "Thing", {"n": 3}).position == 2


def test_each_stamp_is_strictly_after_the_previous_one_when_the_clock_steps_back(db):
    start = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    ticks = iter([start, start - timedelta(hours=1), start + timedelta(seconds=1)])
    log = NotificationLog(Note, clock=lambda: next(ticks))
    for _ in range(3):
        with db.write() as session:
            log.append(session, "Thing", {})
    with db.read() as session:
        times = [r.created for r in reversed(log.between(session, 1, 3))]
    assert times == [start, start + timedelta(microseconds=1), start + timedelta(seconds=1)]
    assert all(t.tzinfo is not None for t in times)


def test_a_clock_that_stands_still_still_gives_each_entry_a_later_stamp(db):
    moment = datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=UTC)
    log = NotificationLog(Note, clock=lambda: moment)
    for _ in range(3):
        with db.write() as session:
            log.append(session, "Thing", {})
    with db.read() as session:
        times = [r.created for r in reversed(log.between(session, 1, 3))]
    assert times == [moment + timedelta(microseconds=n) for n in range(3)]


def test_another_process_with_a_clock_behind_stamps_after_the_newest_entry(db):
    ahead = NotificationLog(Note, clock=lambda: datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC))
    behind = NotificationLog(Note, clock=lambda: datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))
    for log in (ahead, behind):
        with db.write() as session:
            log.append(session, "Thing", {})
    with db.read() as session:
        first, second = (r.created for r in reversed(ahead.between(session, 1, 2)))
    assert second == first + timedelta(microseconds=1)


def test_times_keep_sub_second_precision(db):
    moment = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    log = NotificationLog(Note, clock=lambda: moment)
    with db.write() as session:
        log.append(session, "Thing", {})
    with db.read() as session:
        assert log.created_at(session, 1) == moment
        assert log.created_at(session, 2) is None


def test_concurrent_writers_get_distinct_gap_free_positions(db):
    log = NotificationLog(Note)
    errors = []

    def writer(worker):
        try:
            for n in range(10):
                with db.write() as session:
                    log.append(session, "Thing", {"worker": worker, "n": n})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.read() as session:
        rows = list(reversed(log.between(session, 1, 100)))
    assert [r.position for r in rows] == list(range(1, 41))
    assert [r.created for r in rows] == sorted(r.created for r in rows)


def test_many_appended_at_once_continue_the_positions_in_order_with_stamps_strictly_after_each_other(db):
    moment = datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=UTC)
    log = NotificationLog(Note, clock=lambda: moment + timedelta(seconds=1))
    with db.write() as session:
        log.append(session, "First", {"n": 0})
    log.clock = lambda: moment  # stepped back: the batch still stamps after the newest entry
    with db.write() as session:
        returned = log.append_many(session, [("Thing", {"n": 1}), ("Other", '{"n": 2}'), ("Thing", {"n": 3})])
    with db.read() as session:
        rows = list(reversed(log.between(session, 1, 10)))
    first = moment + timedelta(seconds=1)
    assert [(r.position, r.event_type, json.loads(r.document)["n"], r.created) for r in rows] == [
        (1, "First", 0, first), (2, "Thing", 1, first + timedelta(microseconds=1)),
        (3, "Other", 2, first + timedelta(microseconds=2)), (4, "Thing", 3, first + timedelta(microseconds=3))]
    assert [(r.position, r.created) for r in returned] == [(r.position, r.created) for r in rows[1:]]
    assert log.now() == first + timedelta(microseconds=3)  # Last-Modified never goes back behind a stamp


def test_many_appended_by_concurrent_writers_stay_gap_free_and_in_time_order(db):
    log = NotificationLog(Note)

    def writer(worker):
        for n in range(5):
            with db.write() as session:
                log.append_many(session, [("Thing", {"worker": worker, "n": n, "k": k}) for k in range(3)])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as session:
        rows = list(reversed(log.between(session, 1, 100)))
    assert [r.position for r in rows] == list(range(1, 61))
    assert [r.created for r in rows] == sorted(r.created for r in rows) and len({r.created for r in rows}) == 60
    # Each batch's entries stay together, in their order.
    batches = [[json.loads(r.document)["k"] for r in rows[i:i + 3]] for i in range(0, 60, 3)]
    assert batches == [[0, 1, 2]] * 20


def test_the_page_cache_keeps_only_the_most_recently_used_pages():
    cache = PageCache(2)
    cache.put(("a",), b"A")
    cache.put(("b",), b"B")
    assert cache.get(("a",)) == b"A"  # now "b" is the least recently used
    cache.put(("c",), b"C")
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) == b"A" and cache.get(("c",)) == b"C"


def test_logs_on_the_system_clock_share_one_floor_so_a_time_one_gave_out_bounds_the_stamps_of_another(
        db, monkeypatch):
    # A service stamps its entries through its own log (Publish.log) and its publisher dates pages through another.
    moment = [datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)]
    monkeypatch.setattr(clock_module, "_process_clock", SteadyClock(lambda: moment[0]))
    publisher_side, appender = NotificationLog(Note), NotificationLog(Note)
    given_out = publisher_side.now()  # e.g. a page's Last-Modified
    moment[0] -= timedelta(hours=1)  # the clock steps back
    with db.write() as session:
        stamped = appender.append(session, "Thing", {}).created
    assert stamped >= given_out
    assert publisher_side.now() >= stamped


def test_a_log_on_a_clock_of_its_own_keeps_its_own_floor(db):
    ahead = NotificationLog(Note, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    assert ahead.now() == datetime(2030, 1, 1, tzinfo=UTC)
    assert NotificationLog(Note).now() < datetime(2030, 1, 1, tzinfo=UTC)  # the process's clock did not see it

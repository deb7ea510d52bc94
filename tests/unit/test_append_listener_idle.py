"""The append listener reads the feed's head only while a long poll waits, and no append is missed for it."""
from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import create_engine

from common.feeds.publish.append_signal import AppendSignal
from common.feeds.publish.head import FeedHead
from common.feeds.publish.notify import AppendListener
from tests.unit.test_feed_head import QuietWatch


class MovingHead:
    """The head as the database would answer it; counts the reads."""

    def __init__(self) -> None:
        self.position = 1
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return (self.position, None)


def until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def waiting_thread(signal: AppendSignal, beyond: int, recheck=None) -> tuple[threading.Thread, list]:
    got: list = []
    thread = threading.Thread(target=lambda: got.append(signal.wait(beyond, 10, recheck=recheck)))
    thread.start()
    return thread, got


def test_appends_heard_while_nobody_waits_cost_no_head_read(tmp_path):
    path = tmp_path / "feed.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    signal, probe = AppendSignal(), MovingHead()
    listener = AppendListener(signal, probe, create_engine(f"sqlite:///{path}"), "feed", recheck=0.05)
    head = FeedHead(probe, listener.watch, max_age=60)
    signal.subscribe(head.changed)
    listener.ensure_started()
    try:
        for _ in range(20):  # appends by this process (kicks) and by others (data_version), re-checks elapsing
            writer.execute("INSERT INTO t VALUES (1)")
            listener.kick()
            time.sleep(0.01)
        assert probe.reads == 0

        thread, got = waiting_thread(signal, beyond=1, recheck=head.get)
        assert until(lambda: probe.reads >= 2)  # the waiter's re-check, and the listener's read once woken
        probe.position = 2
        writer.execute("INSERT INTO t VALUES (2)")  # another connection's commit: data_version moves
        thread.join(5)
        assert got == [(2, None)]
    finally:
        listener.stop()


def test_an_append_heard_while_nobody_waited_is_found_by_the_next_waiter_at_once():
    signal, probe = AppendSignal(), MovingHead()
    head = FeedHead(probe, lambda _head: QuietWatch(), max_age=60)
    signal.subscribe(head.changed)
    beyond = head.get()[0]  # the request read the head: position 1
    probe.position = 2  # then an append committed, and the listener heard it with nobody waiting
    assert signal.moved_unread() is True
    thread, got = waiting_thread(signal, beyond, recheck=head.get)
    thread.join(5)
    # Nothing else will wake it: without the re-check it would sleep out its 10 s and answer 304.
    assert got == [(2, None)]


def test_while_a_request_waits_the_listener_reads_the_head_and_wakes_it():
    signal = AppendSignal()
    thread, got = waiting_thread(signal, beyond=1)
    assert until(lambda: signal.waiting == 1)
    assert signal.moved_unread() is False  # the caller must read the head and notify
    signal.notify((2, None))
    thread.join(5)
    assert got == [(2, None)] and signal.waiting == 0


def test_the_first_waiter_wakes_a_listener_that_stopped_watching():
    signal, woken = AppendSignal(), []
    signal.on_first_waiter(lambda: woken.append(signal.waiting))
    first, _ = waiting_thread(signal, beyond=1)
    assert until(lambda: signal.waiting == 1)
    second, _ = waiting_thread(signal, beyond=1)
    assert until(lambda: signal.waiting == 2)
    signal.notify((2, None))
    first.join(5), second.join(5)
    assert woken == [1]

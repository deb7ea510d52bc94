"""Append notifications: the newest (position, created) of a log as this process knows it, and who waits for it.

An `AppendSignal` holds the head and wakes whoever waits for it to move (held long polls) and calls whoever
subscribed (e.g. an in-memory head cache). An `AppendListener` keeps it current from every process that appends:
- in this process, `kick()` after a commit that appended (wired by FeedPublisher.append);
- on PostgreSQL, LISTEN on the channel the append NOTIFYs in its own transaction;
- on SQLite, `PRAGMA data_version` on one connection, read every few milliseconds (it changes when any other
  connection, in any process, commits to the file).
Each of these is a hint only: the listener then reads the head from the database (one indexed query per
process), and it re-reads it every `recheck` seconds anyway, so a lost hint costs at most that delay.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

log = logging.getLogger(__name__)

Head = tuple[int, datetime]  # (position, created) of the newest notification

SQLITE_WATCH_SECONDS = 0.01
RECHECK_SECONDS = 1.0


class AppendSignal:
    """The newest head of one notification log in this process; waiters and subscribers hear when it moves."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._head: Head | None = None
        self._callbacks: list[Callable[[Head], None]] = []
        self.closed = False

    @property
    def head(self) -> Head | None:
        return self._head

    def subscribe(self, callback: Callable[[Head], None]) -> None:
        """Call `callback(head)` (in the listener's thread; keep it short) whenever the head changes."""
        self._callbacks.append(callback)

    def notify(self, head: Head | None) -> None:
        """Record `head` as read from the database; waiters wake and subscribers are called when it changed."""
        if head is None:
            return
        with self._cond:
            if head == self._head:
                return
            self._head = head
            self._cond.notify_all()
        for callback in self._callbacks:
            try:
                callback(head)
            except Exception:  # a subscriber's bug must not stop the listener
                log.exception("append subscriber %r failed", callback)

    def wait(self, beyond: int, timeout: float) -> Head | None:
        """Block until the head's position passes `beyond` (return it), or `timeout` s pass / close() (None)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.closed:
                if self._head is not None and self._head[0] > beyond:
                    return self._head
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        return None

    def close(self) -> None:
        """Release every waiter now and from now on (the process is stopping)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class AppendListener:
    """One daemon thread per process feeding an AppendSignal from the database (see the module's docstring)."""

    def __init__(self, signal: AppendSignal, probe: Callable[[], Head | None], engine: Engine, channel: str,
                 recheck: float = RECHECK_SECONDS, sqlite_watch: float = SQLITE_WATCH_SECONDS) -> None:
        self.signal = signal
        self.probe = probe  # reads the head from the database
        self.engine = engine
        self.channel = channel
        self.recheck = recheck
        self.sqlite_watch = sqlite_watch
        self._kicked = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ensure_started(self) -> None:
        """Start the thread unless it runs in this process (lazy: gunicorn forks workers after the app is built)."""
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=f"append-listener-{self.channel}", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        """Something was appended in this process: read the head now."""
        self._kicked.set()

    def stop(self) -> None:
        """Stop the thread and release every waiter."""
        self._stopping.set()
        self._kicked.set()
        self.signal.close()

    def _refresh(self) -> None:
        try:
            self.signal.notify(self.probe())
        except Exception as exc:  # the database is away: waiters time out and answer from what they know
            log.warning("cannot read the feed's head: %s", exc)

    def _run(self) -> None:
        self._refresh()
        while not self._stopping.is_set():
            try:
                if self.engine.dialect.name == "postgresql":
                    self._listen_postgresql()
                else:
                    self._watch_sqlite()
            except Exception as exc:  # connection lost: wait a little, re-read, listen again
                log.warning("append listener on %s failed (%s); retrying", self.channel, exc)
                self._stopping.wait(self.recheck)
                self._refresh()

    def _watch_sqlite(self) -> None:
        path = self.engine.url.database
        if not path or path == ":memory:":  # no other process can write to it: kicks and rechecks suffice
            while not self._stopping.is_set():
                self._kicked.wait(self.recheck)
                self._kicked.clear()
                self._refresh()
            return
        # Its own connection, outside the pool: it lives as long as the process.
        raw = sqlite3.connect(path, timeout=30, check_same_thread=False)
        try:
            cursor = raw.cursor()
            version = cursor.execute("PRAGMA data_version").fetchone()[0]
            next_check = time.monotonic() + self.recheck
            while not self._stopping.is_set():
                kicked = self._kicked.wait(self.sqlite_watch)
                self._kicked.clear()
                now_version = cursor.execute("PRAGMA data_version").fetchone()[0]
                if kicked or now_version != version or time.monotonic() >= next_check:
                    version = now_version
                    next_check = time.monotonic() + self.recheck
                    self._refresh()
        finally:
            raw.close()

    def _listen_postgresql(self) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'LISTEN "{self.channel}"')
            self._refresh()  # whatever was appended before LISTEN took effect
            while not self._stopping.is_set():
                heard = False
                for _ in conn.notifies(timeout=self.recheck, stop_after=1):
                    heard = True
                # Notifications are hints: one head read covers any number of them, and a silent second re-reads
                # anyway (a NOTIFY lost with a dropped connection, a row written by other means).
                for _ in conn.notifies(timeout=0, stop_after=1000) if heard else ():
                    pass
                self._refresh()

"""Append notifications: how a process hears that a log's head moved, whichever process appended.

The `AppendSignal` (append_signal.py) holds the head; an `AppendListener` keeps it current from every process
that appends:
- in this process, `kick()` after a commit that appended (wired by FeedPublisher.append);
- on PostgreSQL, LISTEN on the channel the append NOTIFYs in its own transaction;
- on SQLite, `PRAGMA data_version` on one connection, read every few milliseconds (it changes when any other
  connection, in any process, commits to the file).
Each of these is a hint only: while a long poll is held, the listener then reads the head from the database (one
indexed query per process), and it re-reads it every `recheck` seconds anyway, so a lost hint costs at most that
delay. While none is held it reads nothing (it only tells the FeedHead), and on SQLite it stops watching until a
request waits again: a head read per append, and a wake-up every 10 ms, cost order intake a fifth of its rate
in a process that had once held a long poll (gunicorn, SQLite: 483 → 390 orders/s; 0.97× without them).
It is the process's one way of hearing of appends: `watch()` gives the FeedHead (head.py) what it asks on every
request (PostgreSQL: whether the LISTEN is in effect; SQLite: the same data_version connection), so a process
holds one LISTEN connection, or one watching SQLite connection, whatever it serves.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from common.feeds.publish.append_signal import AppendSignal
from common.feeds.publish.connections import listen_connection
from common.feeds.publish.head import FeedHead, Head, ReadEveryTime, Watch

log = logging.getLogger(__name__)

SQLITE_WATCH_SECONDS = 0.01
RECHECK_SECONDS = 1.0


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
        self._listening = threading.Event()  # PostgreSQL: LISTEN is in effect, every append will be heard
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        # SQLite: the connection whose data_version tells of other connections' commits, shared by this thread
        # and the FeedHead's requests (under _version_lock), opened in the process that uses it.
        self._version_lock = threading.Lock()
        self._version_connection: sqlite3.Connection | None = None
        self._version_pid = 0
        signal.on_first_waiter(self.kick)  # a parked SQLite watch resumes at once (_watch_sqlite)

    @property
    def _sqlite_file(self) -> str | None:
        """The SQLite database's path; None for another database, or an in-memory one no other process sees."""
        path = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return None
        return path

    def watch(self, head: FeedHead) -> Watch:
        """What `head` asks on every request: whether the log may have grown since it last asked (head.py)."""
        if self.engine.dialect.name == "postgresql":
            self.ensure_started()  # the head depends on it: it listens from the first request on
            return _Listening(self._listening)
        if self._sqlite_file:
            return _DataVersion(self)
        return ReadEveryTime()

    def data_version(self) -> int | None:
        """SQLite's `PRAGMA data_version` on this process's watching connection (None once stopped)."""
        path = self._sqlite_file
        with self._version_lock:
            if self._version_connection is None or self._version_pid != os.getpid():
                if path is None or self._stopping.is_set():
                    return None
                # Outside the pool, never handed out: it lives as long as the process (or until stop()).
                self._version_connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
                self._version_pid = os.getpid()
            version: int = self._version_connection.execute("PRAGMA data_version").fetchone()[0]
            return version

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
        """Something was appended in this process (or a first request waits): read the head now, if anyone waits.

        With nobody waiting the thread is left asleep: the appender has told the FeedHead itself, and a request
        that starts waiting later re-checks that head (AppendSignal.wait)."""
        if self.signal.waiting:
            self._kicked.set()

    def stop(self) -> None:
        """Stop the thread and release every waiter."""
        self._stopping.set()
        self._kicked.set()
        self.signal.close()
        with self._version_lock:
            if self._version_connection is not None and self._version_pid == os.getpid():
                self._version_connection.close()
            self._version_connection = None

    def _refresh(self) -> None:
        if self.signal.moved_unread():  # nobody waits: the head (FeedHead) reads itself when asked
            return
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
        version = self.data_version()
        if version is None:  # in memory, no other process can write to it: kicks and rechecks suffice
            while not self._stopping.is_set():
                self._kicked.wait(self.recheck)
                self._kicked.clear()
                self._refresh()
            return
        next_check = time.monotonic() + self.recheck
        while not self._stopping.is_set():
            # Watched only while a request waits: FeedHead asks data_version itself, and an idle thread waking
            # a hundred times a second costs a GIL-bound intake its share.
            kicked = self._kicked.wait(self.sqlite_watch if self.signal.waiting else self.recheck)
            self._kicked.clear()
            now_version = self.data_version()
            if kicked or now_version != version or time.monotonic() >= next_check:
                version = now_version
                next_check = time.monotonic() + self.recheck
                self._refresh()

    def _listen_postgresql(self) -> None:
        try:
            with listen_connection(self.engine) as conn:
                conn.execute(f'LISTEN "{self.channel}"')
                self._listening.set()  # from here on the head may trust its memory: every append will be heard
                self._refresh()  # whatever was appended before LISTEN took effect
                while not self._stopping.is_set():
                    heard = False
                    for _ in conn.notifies(timeout=self.recheck, stop_after=1):
                        heard = True
                    # Notifications are hints: one head read covers any number of them, and a silent second
                    # re-reads anyway (a NOTIFY lost with a dropped connection, a row written by other means).
                    for _ in conn.notifies(timeout=0, stop_after=1000) if heard else ():
                        pass
                    self._refresh()
        finally:
            self._listening.clear()


class _Listening:
    """PostgreSQL: the head may trust its memory while the listener listens (it calls `changed()` on each append)."""

    def __init__(self, listening: threading.Event) -> None:
        self._listening = listening

    def moved(self) -> bool:
        return not self._listening.is_set()

    def close(self) -> None:
        pass


class _DataVersion:
    """SQLite: the log may have grown when the listener's connection sees another data_version than last time."""

    def __init__(self, listener: AppendListener) -> None:
        self._listener = listener
        self._seen: int | None = None

    def moved(self) -> bool:
        try:
            version = self._listener.data_version()
        except sqlite3.Error:  # cannot tell (the file is gone, say): read the head, which reports it as it fails
            return True
        moved, self._seen = version is None or version != self._seen, version
        return moved

    def close(self) -> None:
        pass

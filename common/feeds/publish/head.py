"""The feed's head — newest position and time — kept in memory, so a 304 costs no database work.

A process reads the head from the database only when it may have moved, as told by a watch:
- SQLite: `PRAGMA data_version` on a connection of the watch's own changes whenever any other connection, in this
  process or another, commits to the file. It is asked on every request (a few microseconds, no table read), so
  the head is never stale: a commit that finished before the request began is always seen.
- PostgreSQL: every append sends `NOTIFY` in its transaction (delivered at commit), and a listener thread of the
  process marks the head as moved when one arrives. An append from this process marks it at commit, so its own
  writes are seen at once; another process's are seen once the notification arrives (sub-millisecond on one host,
  see docs/architecture.md). While the listener is not connected, the head is read on every request.
Whatever the watch says, the head is read again after `max_age` seconds: the safety net should a signal go missing.
`changed()` is the hook anything else that learns of an append (issue 11's long-poll signal) can call.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine

log = logging.getLogger(__name__)

Head = tuple[int, datetime] | None  # (position, created) of the newest notification; None when the log is empty

MAX_AGE = 1.0  # seconds a head is trusted without a sign of change


class Watch(Protocol):
    def moved(self) -> bool:
        """Whether the log may have grown since the last call (True when it cannot tell)."""
        ...

    def close(self) -> None:
        ...


class FeedHead:
    """The newest (position, created) of one notification log, re-read only when a watch says it may have moved."""

    def __init__(self, read: Callable[[], Head], watch: Callable[[FeedHead], Watch] | None = None,
                 max_age: float = MAX_AGE):
        self._read = read
        self._make_watch = watch
        self.max_age = max_age
        self._lock = threading.Lock()
        self._generation = 0  # bumped on every sign of change
        self._cached: tuple[int, float, Head] | None = None  # (generation, monotonic time read, head)
        self._watch: Watch | None = None
        self._watch_pid = 0  # a watch (its connection, its thread) belongs to the process that made it

    def get(self) -> Head:
        """The head as of no earlier than this call (up to the watch's delivery delay on PostgreSQL)."""
        with self._lock:
            # Asked under the lock: a thread that sees no change must not use a head another thread has just
            # been told is stale.
            if self._current_watch().moved():
                self._generation += 1
            generation, cached = self._generation, self._cached
            if cached and cached[0] == generation and time.monotonic() - cached[1] < self.max_age:
                return cached[2]
        started = time.monotonic()
        head = self._read()
        with self._lock:
            if self._generation == generation:  # no change was signalled while reading
                self._cached = (generation, started, head)
        return head

    def changed(self) -> None:
        """The log may have grown: the next get() reads the head again."""
        with self._lock:
            self._generation += 1

    def close(self) -> None:
        with self._lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None

    def _current_watch(self) -> Watch:
        if self._watch is None or self._watch_pid != os.getpid():  # first use, or a forked worker
            self._watch = self._make_watch(self) if self._make_watch else _NoWatch()
            self._watch_pid = os.getpid()
        return self._watch


class _NoWatch:
    """No way to tell: the head is read on every request."""

    def moved(self) -> bool:
        return True

    def close(self) -> None:
        pass


class SqliteDataVersion:
    """`PRAGMA data_version` on a connection of its own: it changes when any other connection commits."""

    def __init__(self, engine: Engine):
        fairy = engine.raw_connection()
        connection = fairy.driver_connection
        fairy.detach()  # never handed out by the pool, never closed under it
        if not isinstance(connection, sqlite3.Connection):
            raise TypeError(f"SqliteDataVersion needs a sqlite3 engine, not {engine.dialect.driver}")
        self._connection = connection
        self._version: int | None = None

    def moved(self) -> bool:
        cursor = self._connection.cursor()
        try:
            version: int = cursor.execute("PRAGMA data_version").fetchone()[0]
        finally:
            cursor.close()
        moved, self._version = version != self._version, version
        return moved

    def close(self) -> None:
        self._connection.close()


class PostgresListener:
    """A thread that LISTENs on the log's channel and calls `on_change` for each notification."""

    def __init__(self, engine: Engine, channel: str, on_change: Callable[[], None], retry: float = 1.0):
        self.engine = engine
        self.channel = channel
        self.on_change = on_change
        self.retry = retry
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)
        self._thread.start()

    def moved(self) -> bool:
        return not self._listening.is_set()

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as exc:  # the database went away: heads are read from it per request until it is back
                failures += 1
                log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                        "feed head listener on %s: %s; retrying every %ss", self.channel, exc, self.retry)
            self._listening.clear()
            self._stop.wait(self.retry)

    def _listen(self) -> None:
        fairy = self.engine.raw_connection()
        connection: Any = fairy.driver_connection  # a psycopg Connection (watch_for checks the driver)
        fairy.detach()
        try:
            connection.autocommit = True
            connection.execute(f'LISTEN "{self.channel}"')
            self._listening.set()
            self.on_change()  # whatever was appended before LISTEN took effect
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=1.0):
                    self.on_change()
        finally:
            self._listening.clear()
            connection.close()


def watch_for(engine: Engine, channel: str) -> Callable[[FeedHead], Watch]:
    """The watch that suits the engine's database."""
    if engine.dialect.name == "sqlite":
        if engine.url.database in (None, "", ":memory:"):  # each connection would see a database of its own
            return lambda head: _NoWatch()
        return lambda head: SqliteDataVersion(engine)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return lambda head: PostgresListener(engine, channel, head.changed)
    return lambda head: _NoWatch()

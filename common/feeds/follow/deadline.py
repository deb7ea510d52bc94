"""A true wall-clock deadline for one HTTP exchange, however slowly a server drips its headers or body.

A socket timeout bounds each read, not their sum: a server sending a byte every few seconds never trips it.
So every connection this session uses registers itself with the deadline of the request in progress on its
thread, and a watchdog shuts the socket down when that deadline passes; the blocked read then ends at once.
One watchdog thread serves every deadline of the process (a thread started per request would cost more than the
request's own work on a fast feed).
"""
from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """`with Deadline(seconds):` around a request; `expired` says whether it cut the exchange short."""

    def __init__(self, seconds: float, registry: set[Deadline] | None = None) -> None:
        self.seconds = seconds
        self.registry = registry if registry is not None else set()  # the deadlines in progress of one client
        self.expired = False
        # Sockets, not connections: http.client drops a connection's socket once a response that closes it has
        # begun (HTTP/1.0, Connection: close), while the response still reads from it.
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self.done = False  # the exchange ended: the watchdog forgets this deadline

    def __enter__(self) -> Deadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self
        self.registry.add(self)
        _watchdog.watch(self, time.monotonic() + self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.done = True
            self._socks.clear()  # a late expiry must not cut a connection that went back to the pool
        _current.deadline = self._outer
        self.registry.discard(self)

    def watch(self, conn: HTTPConnection) -> None:
        """Cover the socket `conn` uses now (none yet: its `connect` calls this again)."""
        sock = getattr(conn, "sock", None)
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def expire(self) -> None:
        """End the exchange now: shut down the sockets it uses (a blocked read returns at once)."""
        with self._lock:
            self.expired = True
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)


class _Watchdog:
    """One daemon thread that expires each deadline when it passes; ended deadlines are dropped unexpired."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start afresh (also in a forked child, where the thread is gone)."""
        self._due: list[tuple[float, int, Deadline]] = []  # a heap by time; the counter breaks ties
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._compact_at = 1024

    def watch(self, deadline: Deadline, when: float) -> None:
        with self._wake:
            if len(self._due) >= self._compact_at:  # ended deadlines under a live one: keep memory bounded
                self._due = [item for item in self._due if not item[2].done]
                heapq.heapify(self._due)
                self._compact_at = max(1024, 2 * len(self._due))
            heapq.heappush(self._due, (when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="feed-deadlines", daemon=True)
                self._thread.start()
            elif self._due[0][2] is deadline:
                self._wake.notify()  # due before the one the thread sleeps towards

    def _run(self) -> None:
        while True:
            with self._wake:
                due: list[Deadline] = []
                now = time.monotonic()
                # Ended deadlines at the top go at once, so the thread sleeps towards a live one (few wake-ups).
                while self._due and (self._due[0][2].done or self._due[0][0] <= now):
                    due.append(heapq.heappop(self._due)[2])
                if not due:
                    self._wake.wait(self._due[0][0] - now if self._due else None)
            for deadline in due:
                if not deadline.done:
                    deadline.expire()


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.reset)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _HTTPConnection(HTTPConnection):
    """A connection whose socket the Deadline in force on the requesting thread covers."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(self)
        super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(self)  # again, now that the socket exists


class _HTTPSConnection(_HTTPConnection, HTTPSConnection):
    """The same for HTTPS (its super() calls reach HTTPSConnection's own request and connect)."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey the `Deadline` in force on the requesting thread."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

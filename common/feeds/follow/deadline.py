"""A true wall-clock deadline for one HTTP exchange, however slowly a server drips its headers or body.

A socket timeout bounds each read, not their sum: a server sending a byte every few seconds never trips it.
So every connection this session uses registers itself with the deadline of the request in progress on its
thread, and a timer shuts the socket down when that deadline passes; the blocked read then ends at once.
"""
from __future__ import annotations

import socket
import threading
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
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self
        self.registry.add(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
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

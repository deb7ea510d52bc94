"""A fault-injecting HTTP proxy on loopback, placed between a consumer and the order feed.

Every request the proxy accepts is answered according to the current mode (switchable at runtime):

- ``pass``             forward to the upstream and relay the complete response
- ``refuse``           the listening socket is closed: connections are refused (ECONNREFUSED)
- ``reset``            accept, read the request, then reset the connection (RST)
- ``stall``            accept, read the request, send nothing until the stall ends (past any read timeout)
- ``stall_body``       send the headers and half the body, then stall
- ``truncate``         send the full Content-Length but only half the body, then close
- ``truncate_chunked`` chunked transfer encoding, cut in the middle of a chunk, no terminating chunk
- ``truncate_xml``     a well-framed 200 whose body is the upstream XML cut in half
- ``500``/``502``/``503`` an error status with a small body
- ``mix``              a seeded random choice per request among the kinds given to :meth:`FaultProxy.mix`
                       (``refuse`` becomes ``reset`` there: a per-connection refusal is a reset)

Counters per fault kind are kept in :attr:`FaultProxy.counts`; :attr:`FaultProxy.max_position_served` is the
highest ``atomshop:position`` found in a response body the proxy delivered completely with status 200, so a test
can assert that a consumer never got ahead of what it actually received.
"""
from __future__ import annotations

import collections
import http.client
import random
import socket
import struct
import threading
from urllib.parse import urlsplit

from lxml import etree

from tests.support import Managed

ATOMSHOP_NS = "tag:atomshop.example,2026:ns/feed"
FAULT_KINDS = ("reset", "stall", "stall_body", "truncate", "truncate_chunked", "truncate_xml", "500", "502", "503")
MODES = ("pass", "refuse", "mix", *FAULT_KINDS)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te",
              "trailer", "upgrade"}


def positions_in(body: bytes) -> list[int]:
    """Feed positions found in an Atom page body (empty if it does not parse)."""
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return []
    return [int(el.text) for el in root.iter(f"{{{ATOMSHOP_NS}}}position") if (el.text or "").strip().isdigit()]


class FaultProxy(Managed):
    """Threaded loopback proxy in front of ``upstream`` (e.g. ``http://127.0.0.1:8081``)."""

    def __init__(self, upstream: str, mode: str = "pass", seed: int = 0, stall_seconds: float = 60.0):
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.stall_seconds = stall_seconds
        self.rng = random.Random(seed)
        self.counts: collections.Counter[str] = collections.Counter()
        self.max_position_served = 0
        self.requests_seen = 0
        # Request header fields (lower case) never forwarded: e.g. {"prefer"} makes a feed that ignores long polls.
        self.drop_request_headers: set[str] = set()
        self._weights: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._closing = False
        self.port = 0
        self.mode = "pass"
        self._bind()
        self.set_mode(mode)
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)

    # ----- control -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def set_mode(self, mode: str) -> None:
        """Switch the behaviour for the next connections."""
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; one of {MODES}")
        with self._lock:
            self.mode = mode
            if mode == "refuse":
                self._close_listener()
            elif self._listener is None:
                self._bind()

    def mix(self, weights: dict[str, float], seed: int | None = None) -> None:
        """Random faults: per request, a kind drawn from ``weights`` (``pass`` included if wanted)."""
        unknown = set(weights) - {"pass", "refuse", *FAULT_KINDS}
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}")
        with self._lock:
            if seed is not None:
                self.rng.seed(seed)
            self._weights = {("reset" if k == "refuse" else k): w for k, w in weights.items()}
        self.set_mode("mix")

    def release_stalls(self) -> None:
        """End every stall now (they also end by themselves after ``stall_seconds``)."""
        self._stop.set()
        self._stop = threading.Event()

    def stop(self) -> None:
        self.release_stalls()
        self._closing = True
        with self._lock:
            self._close_listener()
            for conn in list(self._conns):
                _close_quietly(conn)

    @property
    def faults_injected(self) -> dict[str, int]:
        return {k: v for k, v in self.counts.items() if k != "pass"}

    # ----- sockets ------------------------------------------------------------------------------------------
    def _bind(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._listening.set()

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:  # shutdown stops listening at once, even while the accept thread still holds the socket
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            _close_quietly(self._listener)
            self._listener = None
            self._listening.clear()

    def _accept_loop(self) -> None:
        while not self._closing:
            listener = self._listener
            if listener is None:
                self._listening.wait(0.1)
                continue
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(30)
            with self._lock:
                self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="fault-proxy-conn", daemon=True)
            t.start()

    # ----- one connection -----------------------------------------------------------------------------------
    def _choose(self) -> str:
        with self._lock:
            self.requests_seen += 1
            if self.mode == "refuse":  # accepted just before the listener closed
                return "reset"
            if self.mode != "mix":
                return self.mode
            kinds, weights = zip(*self._weights.items(), strict=True)
            return self.rng.choices(kinds, weights)[0]

    def _count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            kind = self._choose()
            self._count(kind)
            stall = self._stop
            if kind == "reset":
                _reset(conn)
                return
            if kind == "stall":
                stall.wait(self.stall_seconds)
                return
            if kind in ("500", "502", "503"):
                body = b'{"error": "injected fault"}'
                conn.sendall(_head(int(kind), [("Content-Type", "application/json")], len(body)) + body)
                return
            status, headers, body = self._forward(*request)
            if kind == "pass":
                if status == 200:  # recorded before sending: the client may act on it before sendall returns
                    top = max(positions_in(body), default=0)
                    with self._lock:
                        self.max_position_served = max(self.max_position_served, top)
                conn.sendall(_head(status, headers, len(body)) + body)
            elif kind == "truncate":
                conn.sendall(_head(status, headers, len(body)) + body[: len(body) // 2])
            elif kind == "truncate_xml":
                cut = body[: len(body) // 2]
                conn.sendall(_head(status, headers, len(cut)) + cut)
            elif kind == "truncate_chunked":
                half = body[: max(1, len(body) // 2)]
                conn.sendall(_head(status, headers, None) + b"%x\r\n" % len(body) + half)
            elif kind == "stall_body":
                conn.sendall(_head(status, headers, len(body)) + body[: len(body) // 2])
                stall.wait(self.stall_seconds)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            _close_quietly(conn)

    def _forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            # The client's Host header goes through unchanged, so the feed's absolute links point at the proxy
            # and every later page is fetched through it too.
            sent = {k: v for k, v in headers if k.lower() not in HOP_BY_HOP | self.drop_request_headers}
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in sent.items():
                upstream.putheader(name, value)
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, kept, data
        except OSError:
            body = b'{"error": "upstream unreachable"}'
            return 502, [("Content-Type", "application/json")], body
        finally:
            upstream.close()


def _read_request(conn: socket.socket):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    length = int({k.lower(): v for k, v in headers}.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return method, target, headers, rest[:length]


def _head(status: int, headers: list[tuple[str, str]], length: int | None) -> bytes:
    reason = http.client.responses.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reset(conn: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass

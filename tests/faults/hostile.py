"""A loopback server of broken and malicious order-feed pages, switchable at runtime.

``server.set_routes({path: route})`` replaces what it serves. A route is a :class:`~tests.faults.atom.Page`
(rendered against the server's URL, with an ETag and 304s), a :class:`Raw` body, or a :class:`Stream` generated
chunk by chunk (the 50 MB page is never held in memory). The server counts requests and bytes sent per path, so a
test can prove a consumer did not loop, did not fetch an external DTD, and stopped reading an oversized page.
The scenario functions below build the route tables of issue 4 item 6.
"""
from __future__ import annotations

import collections
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.faults.atom import Entry, Page, paged_feed
from tests.support import Managed

ATOM_TYPE = "application/atom+xml; charset=utf-8"


@dataclass
class Raw:
    body: bytes
    status: int = 200
    content_type: str = ATOM_TYPE
    headers: dict[str, str] = field(default_factory=dict)  # e.g. a redirect's Location


@dataclass
class Drip:
    """``body`` sent ``step`` bytes every ``interval`` seconds (a slow-loris publisher), after its headers or,
    with ``drip_headers``, from the first header byte on."""

    body: bytes
    interval: float = 0.3
    step: int = 1
    drip_headers: bool = False


@dataclass
class Stream:
    """``head`` + filler up to ``size`` bytes + ``tail``; with ``declare_length`` a Content-Length is sent."""

    size: int
    head: bytes
    tail: bytes
    filler: bytes = b"<!-- " + b"x" * 65_000 + b" -->\n"
    declare_length: bool = True


class HostileFeedServer(Managed):
    """Threaded HTTP server on 127.0.0.1 serving whatever route table the test sets."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.fallback: Callable[[str], object | None] | None = None  # routes made on demand (endless chains)
        self.hits: collections.Counter[str] = collections.Counter()
        self.bytes_sent: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection; a close ends an undeclared body

            def do_GET(self):  # noqa: N802 (http.server naming)
                outer._handle(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="hostile-feed", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def feed_url(self) -> str:
        return self.url + "/feed"

    def set_routes(self, routes: dict[str, object]) -> None:
        with self.lock:
            self.routes = dict(routes)

    def reset_counts(self) -> None:
        with self.lock:
            self.hits.clear()
            self.bytes_sent.clear()

    def start(self) -> HostileFeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        with self.lock:
            self.hits[path] += 1
            route = self.routes.get(path)
        if route is None and self.fallback is not None:
            route = self.fallback(path)
        try:
            if route is None:
                self._send(req, path, Raw(b'{"error": "not found"}', 404, "application/json"))
            elif isinstance(route, Page):
                # Links built from the Host header, as the publisher does: through a proxy they point at it.
                host = req.headers.get("Host")
                body = route.xml(f"http://{host}" if host else self.url).encode("utf-8")
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                if req.headers.get("If-None-Match") == etag:
                    req.send_response(304)
                    req.send_header("ETag", etag)
                    req.end_headers()
                    return
                self._send(req, path, Raw(body), etag)
            elif isinstance(route, Raw):
                self._send(req, path, route)
            elif isinstance(route, Stream):
                self._stream(req, path, route)
            elif isinstance(route, Drip):
                self._drip(req, path, route)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the consumer hung up: exactly what an oversized page should make it do

    def _send(self, req, path: str, raw: Raw, etag: str | None = None) -> None:
        req.send_response(raw.status)
        req.send_header("Content-Type", raw.content_type)
        req.send_header("Content-Length", str(len(raw.body)))
        req.send_header("Cache-Control", "public, max-age=0")
        for name, value in raw.headers.items():
            req.send_header(name, value)
        if etag:
            req.send_header("ETag", etag)
        req.end_headers()
        req.wfile.write(raw.body)
        with self.lock:
            self.bytes_sent[path] += len(raw.body)

    def _stream(self, req, path: str, stream: Stream) -> None:
        req.send_response(200)
        req.send_header("Content-Type", ATOM_TYPE)
        if stream.declare_length:
            req.send_header("Content-Length", str(stream.size))
        req.end_headers()
        remaining = stream.size - len(stream.head) - len(stream.tail)
        self._write(req, path, stream.head)
        while remaining > 0:
            chunk = stream.filler[:remaining]
            self._write(req, path, chunk)
            remaining -= len(chunk)
        self._write(req, path, stream.tail)

    def _drip(self, req, path: str, drip: Drip) -> None:
        head = (f"HTTP/1.0 200 OK\r\nContent-Type: {ATOM_TYPE}\r\nContent-Length: {len(drip.body)}\r\n"
                "\r\n").encode()
        data = head + drip.body if drip.drip_headers else drip.body
        if not drip.drip_headers:
            req.wfile.write(head)
        for i in range(0, len(data), drip.step):
            self._write(req, path, data[i:i + drip.step])
            req.wfile.flush()
            time.sleep(drip.interval)

    def _write(self, req, path: str, data: bytes) -> None:
        req.wfile.write(data)
        with self.lock:
            self.bytes_sent[path] += len(data)


# ----- scenarios (route tables) ----------------------------------------------------------------------------------

def good_feed(orders: int, size: int = 5, first_order_id: int = 1) -> dict[str, Page]:
    """A well-formed feed of ``orders`` OrderCreated entries."""
    return paged_feed([Entry(p, first_order_id + p - 1) for p in range(1, orders + 1)], size)


def single_page(*entries: Entry, doctype: str = "") -> dict[str, Page]:
    """A feed with one current page holding ``entries``."""
    return {"/feed": Page("/feed", list(entries), doctype=doctype)}


def not_xml() -> dict[str, Raw]:
    return {"/feed": Raw(b'{"this": "is JSON, not an Atom feed"} <feed')}


def truncated_xml(orders: int = 5) -> dict[str, Raw]:
    """A well-framed 200 whose XML stops in the middle of an entry."""
    body = single_page(*[Entry(p, p) for p in range(1, orders + 1)])["/feed"].xml("http://127.0.0.1").encode()
    return {"/feed": Raw(body[: int(len(body) * 0.6)])}


def xxe_local_file(secret_path: str, order_id: int = 1) -> dict[str, Page]:
    """An external general entity pointing at a local file, referenced in the title and in the order JSON."""
    doctype = f'<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file://{secret_path}">]>\n'
    content = json.dumps({"id": order_id, "created": "2026-01-01T00:00:00Z",
                          "customer": {"id": 1, "first_name": "&xxe;", "last_name": "&xxe;", "email": "a@example.com"},
                          "shipping_address": {"street": "&xxe;", "zip": "1", "city": "&xxe;"},
                          "billing_address": {"street": "&xxe;", "zip": "1", "city": "&xxe;"},
                          "lines": [{"item": {"id": 1, "name": "&xxe;", "price": "1.00"}, "quantity": 1}],
                          "total": "1.00"})
    return single_page(Entry(1, order_id, content=content, raw_content=True), doctype=doctype)


def xxe_external_dtd(server_url: str) -> dict[str, object]:
    """Out-of-band XXE: an external DTD and a parameter entity on this server; fetching them is the leak."""
    doctype = (f'<!DOCTYPE feed SYSTEM "{server_url}/evil.dtd" [<!ENTITY % remote SYSTEM '
               f'"{server_url}/evil-param.dtd"> %remote;]>\n')
    routes: dict[str, object] = single_page(Entry(1, 1), doctype=doctype)
    routes["/evil.dtd"] = Raw(b'<!ENTITY leak "dtd fetched">', content_type="application/xml-dtd")
    routes["/evil-param.dtd"] = Raw(b'<!ENTITY leak2 "param dtd fetched">', content_type="application/xml-dtd")
    return routes


def billion_laughs(order_id: int = 1) -> dict[str, Page]:
    """Nine levels of tenfold entity expansion (3 GB if expanded), referenced in an entry's content."""
    decls = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doctype = "<!DOCTYPE feed [" + "".join(decls) + "]>\n"
    return single_page(Entry(1, order_id, content="&lol9;", raw_content=True), doctype=doctype)


def huge_page(size: int = 50 * 1024 * 1024, declare_length: bool = True) -> dict[str, Stream]:
    """A well-formed page of ``size`` bytes, padded with comments, generated while it is sent."""
    page = single_page(Entry(1, 1))["/feed"].xml("http://127.0.0.1")
    head, tail = page.split("<entry>", 1)
    return {"/feed": Stream(size, head.encode(), ("<entry>" + tail).encode(), declare_length=declare_length)}


def link_loop(kind: str = "cycle") -> dict[str, Page]:
    """Archive links that loop: ``cycle`` (1 ⇄ 2 via prev-archive), ``self`` (a page is its own prev-archive),
    ``next`` (next-archive of an archive points back to itself)."""
    if kind == "self":
        return {"/feed": Page("/feed", [Entry(12, 12)], prev_archive="/feed/pages/2"),
                "/feed/pages/2": Page("/feed/pages/2", [Entry(p, p) for p in range(6, 11)],
                                      prev_archive="/feed/pages/2", next_archive="/feed", archive=True)}
    if kind == "next":
        return {"/feed": Page("/feed", [Entry(11, 11)], prev_archive="/feed/pages/2"),
                "/feed/pages/2": Page("/feed/pages/2", [Entry(p, p) for p in range(6, 11)],
                                      prev_archive="/feed/pages/1", next_archive="/feed", archive=True),
                "/feed/pages/1": Page("/feed/pages/1", [Entry(p, p) for p in range(1, 6)],
                                      prev_archive=None, next_archive="/feed/pages/1", archive=True)}
    return {"/feed": Page("/feed", [Entry(11, 11)], prev_archive="/feed/pages/2"),
            "/feed/pages/2": Page("/feed/pages/2", [Entry(p, p) for p in range(6, 11)],
                                  prev_archive="/feed/pages/1", next_archive="/feed", archive=True),
            "/feed/pages/1": Page("/feed/pages/1", [Entry(p, p) for p in range(1, 6)],
                                  prev_archive="/feed/pages/2", next_archive="/feed/pages/2", archive=True)}

"""Answering "not modified" for the current page before the web framework sees the request.

A follower that polls asks for the current page with the ETag it holds, and is almost always told 304: with the
head in memory (head.py) that answer needs no database, but a Flask request still costs several times the answer
itself (request context, session, before/after hooks). `NotModifiedShortcut` is WSGI middleware that recognises
exactly that request — GET or HEAD of the current page, an If-None-Match naming the page as it is now, no
`Prefer: wait` (a long poll is held by the view), credentials the host accepts — and answers it with the same
headers the view would. Anything else, and any doubt, goes on to the app, which stays the plain path beside it:
bench/feed_speed.py, `/feed answered 304`, measures what this saves.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from werkzeug.exceptions import SecurityError
from werkzeug.http import parse_etags
from werkzeug.wrappers import Request

from common.feeds.publish.pages import current_page
from common.feeds.publish.respond import CURRENT_CACHE_CONTROL, validators

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from common.feeds.publish.publisher import FeedPublisher

Accepts = Callable[["WSGIEnvironment"], bool]  # whether the request's credentials may read the feed
Answered = Callable[[str, int, float], None]  # told (method, status, seconds) of every answer the shortcut gives


class NotModifiedShortcut:
    """WSGI middleware answering a matching conditional GET of the feed's current page with 304 from memory."""

    def __init__(self, app: WSGIApplication, publisher: FeedPublisher, path: str = "/feed",
                 accepts: Accepts = lambda environ: True, headers: Iterable[tuple[str, str]] = (),
                 answered: Answered | None = None, trusted_hosts: list[str] | None = None) -> None:
        self.app = app
        self.publisher = publisher
        self.path = path  # below the script root: mount it inside ProxyFix, which sets SCRIPT_NAME
        self.accepts = accepts
        self.headers = list(headers)  # what the host's after-request hooks add to every answer
        self.answered = answered
        self.trusted_hosts = trusted_hosts  # the app's TRUSTED_HOSTS: a Host outside them is the app's to refuse

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            answer = self._not_modified(environ)
        except Exception:  # the head could not be read (the database is away): the app answers, as it answers errors
            answer = None
        if answer is None:
            return self.app(environ, start_response)
        start_response("304 NOT MODIFIED", answer)
        if self.answered is not None:
            self.answered(environ["REQUEST_METHOD"], 304, time.perf_counter() - started)
        return []

    def _not_modified(self, environ: WSGIEnvironment) -> list[tuple[str, str]] | None:
        """The 304's headers when the request is one this shortcut answers and the page has not changed."""
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if (if_none_match is None or environ.get("PATH_INFO") != self.path
                or environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or "HTTP_PREFER" in environ
                or environ.get("QUERY_STRING") or not self.accepts(environ)):
            return None
        head = self.publisher.head
        if head is None:
            return None
        newest = head.get()
        page = current_page(newest[0] if newest else 0, self.publisher.page_size)
        updated = newest[1] if newest else self.publisher.origin
        try:
            root = root_url(environ, self.trusted_hosts)
        except SecurityError:
            return None
        etag, headers = validators(page, updated, self.publisher.log.now(), root, CURRENT_CACHE_CONTROL)
        if not parse_etags(if_none_match).contains_weak(etag):
            return None
        return list(headers.items()) + self.headers  # with Last-Modified, as the view's 304 (respond.NotModified)


def root_url(environ: WSGIEnvironment, trusted_hosts: list[str] | None = None) -> str:
    """The request's root URL as the view sees it (`request.url_root`, on which the entity tag depends)."""
    request = Request(environ, populate_request=False, shallow=True)
    request.trusted_hosts = trusted_hosts
    return request.url_root

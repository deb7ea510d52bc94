"""A service's Atom feed of its notification log: `/feed` and immutable archive pages, with conditional GET."""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any, Callable

from flask import Blueprint, Flask, Response, abort, redirect, request, url_for
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.http import http_date

from common.feeds.publish.atom import FORMAT_VERSION, FeedSpec, PageLinks, render_page
from common.feeds.publish.head import FeedHead, Head, watch_for
from common.feeds.publish.pages import EPOCH, Page, current_page, entity_tag, last_modified, not_modified_since, \
    parse_page_number
from common.feeds.publish.log import NotificationLog, utcnow
from common.feeds.uow import UnitOfWork

ATOM_TYPE = "application/atom+xml; charset=utf-8"
CURRENT_CACHE_CONTROL = "public, max-age=2"
ARCHIVE_CACHE_CONTROL = "public, max-age=31536000, immutable"
PUBLISHER_KEY = "atomshop.publisher"


class PageCache:
    """A bounded, thread-safe LRU of rendered pages."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._pages: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def put(self, key: tuple, body: bytes) -> None:
        with self._lock:
            self._pages[key] = body
            self._pages.move_to_end(key)
            while len(self._pages) > self.capacity:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


class FeedPublisher:
    """Publishes one notification log as a paged feed (RFC 5005) and appends to it."""

    def __init__(self, model: type, spec: FeedSpec, page_size: int = 20, cache_pages: int = 256,
                 clock: Callable[[], datetime] = utcnow):
        self.log = NotificationLog(model, clock)
        self.spec = spec
        self.page_size = page_size
        self.cache = PageCache(cache_pages)
        self.db: UnitOfWork | None = None  # set by init_app
        self.head: FeedHead | None = None  # set by init_app

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.log.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.log.clock = clock

    def append(self, session: Session, event_type: str, document: Any):
        """Add a notification to the log in the caller's unit of work; it is in the feed once that commits."""
        row = self.log.append(session, event_type, document)
        if self.head is not None:  # this process's own appends move its head at once
            event.listen(session, "after_commit", lambda _session: self.head.changed(), once=True)
        return row

    def init_app(self, app: Flask, db: UnitOfWork, url_prefix: str = "/feed") -> None:
        """Serve the feed of `db`'s notifications at `url_prefix` (current page) and `url_prefix/pages/<k>`."""
        self.db = db
        with db.read() as session:
            engine = session.get_bind()
        self.head = FeedHead(self._read_head, watch_for(engine, self.log.channel))
        app.extensions[PUBLISHER_KEY] = self
        app.register_blueprint(self.blueprint(), url_prefix=url_prefix)

    def blueprint(self) -> Blueprint:
        """Blueprint serving the current page at '' and archive pages at '/pages/<k>'."""
        bp = Blueprint("feed", __name__)
        bp.add_url_rule("", "current", self.serve_current, strict_slashes=False)
        bp.add_url_rule("/pages/<path:raw>", "page", self.serve_page)
        return bp

    def _read_head(self) -> Head:
        with self.db.read() as session:
            return self.log.last(session)

    def serve_current(self) -> Response:
        newest = self.head.get()  # from memory unless the log may have grown
        page = current_page(newest[0] if newest else 0, self.page_size)
        return self._respond(page, newest[1] if newest else None, CURRENT_CACHE_CONTROL)

    def serve_page(self, raw: str) -> Response:
        number = parse_page_number(raw)
        if number is None:
            abort(404)
        with self.db.read() as session:
            # Positions are gap-free: page k is a full archive exactly when position k * size exists.
            updated = self.log.created_at(session, number * self.page_size)
            if updated is None:
                newest = self.log.last(session)
                if newest and newest[0] >= number * self.page_size:
                    # Filled between the two reads (each statement sees the latest commits under PostgreSQL's
                    # READ COMMITTED); positions commit in order, so position k * size is visible now.
                    updated = self.log.created_at(session, number * self.page_size)
            if updated is not None:
                page = Page(number, self.page_size, number * self.page_size)
                return self._respond(page, updated, ARCHIVE_CACHE_CONTROL)
        if current_page(newest[0] if newest else 0, self.page_size).number == number:
            # Archives link the next one by its future URL (so their bytes never change); until that page
            # fills up, it is the current page.
            response = redirect(url_for(".current"), 302)
            response.headers["Cache-Control"] = "no-store"
            return response
        abort(404)

    def _respond(self, page: Page, updated: datetime | None, cache_control: str) -> Response:
        """The page, or 304 when the request's validators match — decided before anything is rendered."""
        root = request.url_root
        etag = entity_tag(FORMAT_VERSION, root, page.size, page.number, page.last, updated)
        modified = last_modified(updated, self.log.now())  # now() never steps back (see NotificationLog)
        headers = {"ETag": f'"{etag}"', "Last-Modified": http_date(modified), "Cache-Control": cache_control}
        if request.headers.get("If-None-Match") is not None:  # RFC 9110 §13.2.2: it overrides If-Modified-Since
            fresh = request.if_none_match.contains_weak(etag)
        else:
            since = request.if_modified_since
            fresh = since is not None and not_modified_since(updated, since)
        if fresh:
            response = Response(status=304, headers=headers)
            del response.headers["Content-Type"]
            return response
        key = (root, page.number, page.last)
        body = self.cache.get(key)
        if body is None:
            with self.db.read() as session:
                body = self._render(session, page, updated, root)
            self.cache.put(key, body)
        return Response(body, status=200, headers=headers, content_type=ATOM_TYPE)

    def _render(self, session: Session, page: Page, updated: datetime | None, root: str) -> bytes:
        current_url = url_for(".current", _external=True)
        archive = page.is_archive
        links = PageLinks(
            self_url=url_for(".page", raw=str(page.number), _external=True) if archive else current_url,
            current_url=current_url,
            prev_archive=url_for(".page", raw=str(page.number - 1), _external=True) if page.has_older else None,
            next_archive=url_for(".page", raw=str(page.number + 1), _external=True) if archive else None)
        rows = self.log.between(session, page.first, page.last)
        return render_page(self.spec, links, archive, updated or EPOCH, rows, root)

"""A service's Atom feed of its notification log: `/feed` and immutable archive pages, with conditional GET."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, redirect, request, url_for
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from common.feeds.publish.append_signal import AppendSignal
from common.feeds.publish.archive import ArchivePageMixin, ArchiveStore
from common.feeds.publish.atom import FORMAT_VERSION, FeedSpec
from common.feeds.publish.cache import PageCache, PageKey
from common.feeds.publish.clock import utcnow
from common.feeds.publish.head import FeedHead, Head
from common.feeds.publish.log import FeedOriginMixin, NotificationLog, NotificationMixin
from common.feeds.publish.longpoll import MAX_WAIT_SECONDS, applied_wait, requested_wait
from common.feeds.publish.notify import AppendListener
from common.feeds.publish.page_templates import PageTemplates, TemplateCache
from common.feeds.publish.pages import Page, current_page, entity_tag, parse_page_number
from common.feeds.publish.respond import ARCHIVE_CACHE_CONTROL, ATOM_TYPE, CURRENT_CACHE_CONTROL, respond
from common.feeds.uow import UnitOfWork

PUBLISHER_KEY = "atomshop.publisher"
# In Session.info: the publishers this session appended to, told at its commit (wakes this process's long polls).
APPENDED_KEY = "atomshop.appended"
__all__ = ["APPENDED_KEY", "ARCHIVE_CACHE_CONTROL", "ATOM_TYPE", "CURRENT_CACHE_CONTROL", "PUBLISHER_KEY",
           "FeedPublisher", "PageCache", "PageKey"]


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # One hook on the Session class, rather than one registered per append (which cost more than the append's
    # insert): a commit with nothing appended finds no publishers and returns.
    for publisher in session.info.pop(APPENDED_KEY, ()):
        publisher._appended()


class FeedPublisher:
    """Publishes one notification log as a paged feed (RFC 5005) and appends to it."""

    def __init__(self, model: type[NotificationMixin], spec: FeedSpec, page_size: int = 20, cache_pages: int = 256,
                 clock: Callable[[], datetime] = utcnow, archive_model: type[ArchivePageMixin] | None = None,
                 origin_model: type[FeedOriginMixin] | None = None) -> None:
        self.log = NotificationLog(model, clock)
        self.origin_model = origin_model  # a FeedOriginMixin table: without it an empty feed dates from 1970
        self.origin: datetime | None = None  # when the feed began (set by init_app)
        self.archive_model = archive_model  # an ArchivePageMixin table: full pages rendered once, for all processes
        self.archives: ArchiveStore | None = None  # set by init_app
        self.spec = spec
        self.page_size = page_size
        self.cache: TemplateCache = PageCache(cache_pages)  # the pages' templates (page_templates.py)
        self.db: UnitOfWork | None = None  # set by init_app
        self.head: FeedHead | None = None  # set by init_app
        self.max_wait = MAX_WAIT_SECONDS
        # Held long polls wait on this: the head as this process's listener last read it (notify.py).
        self.signal = AppendSignal()
        self.listener: AppendListener | None = None  # set by init_app
        self._pages: PageTemplates | None = None  # set by init_app

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.log.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.log.clock = clock

    def append(self, session: Session, event_type: str, document: Any) -> NotificationMixin:
        """Add a notification to the log in the caller's unit of work; it is in the feed once that commits."""
        row = self.log.append(session, event_type, document)
        session.info.setdefault(APPENDED_KEY, set()).add(self)  # _appended() once it commits (_after_commit)
        return row

    def append_many(self, session: Session, notifications: list[tuple[str, Any]]) -> list[NotificationMixin]:
        """Add (event type, document) notifications, in order, in the caller's unit of work (NotificationLog)."""
        rows = self.log.append_many(session, notifications)
        session.info.setdefault(APPENDED_KEY, set()).add(self)
        return rows

    def _appended(self) -> None:
        """A transaction of this process that appended has committed: its head moves at once, long polls wake."""
        if self.head is not None:
            self.head.changed()
        if self.listener is not None:
            self.listener.kick()

    def start_listening(self) -> None:
        """Keep `signal` current from every process's appends (started lazily, so once per forked worker)."""
        if self.listener is not None:
            self.listener.ensure_started()

    def close(self) -> None:
        """Stop listening and answer every held long poll now (the process is stopping)."""
        if self.listener is not None:
            self.listener.stop()
        else:
            self.signal.close()
        if self.archives is not None:
            self.archives.close()

    def init_app(self, app: Flask, db: UnitOfWork, url_prefix: str = "/feed") -> None:
        """Serve the feed of `db`'s notifications at `url_prefix` (current page) and `url_prefix/pages/<k>`."""
        self.db = db
        with db.read() as session:
            engine = session.get_bind().engine
        # One listener per process hears of every append: it wakes held long polls and keeps the head current.
        self.listener = listener = AppendListener(self.signal, self._read_head, engine, self.log.channel)
        self.head = head = FeedHead(self._read_head, listener.watch)
        self.signal.subscribe(head.changed)
        if self.archive_model is not None:
            self.archives = ArchiveStore(self.archive_model, db, FORMAT_VERSION, engine)
        if self.origin_model is not None:
            with db.write() as session:
                self.origin = self.log.origin(session, self.origin_model)
        self._pages = PageTemplates(self.log, self.spec, self.page_size, self.cache, db, self.archives)
        app.extensions[PUBLISHER_KEY] = self
        app.register_blueprint(self.blueprint(), url_prefix=url_prefix)

    def blueprint(self) -> Blueprint:
        """Blueprint serving the current page at '' and archive pages at '/pages/<k>'."""
        bp = Blueprint("feed", __name__)
        bp.add_url_rule("", "current", self.serve_current, strict_slashes=False)
        bp.add_url_rule("/pages/<path:raw>", "page", self.serve_page)
        return bp

    @property
    def _uow(self) -> UnitOfWork:
        if self.db is None:
            raise RuntimeError("FeedPublisher.init_app(app, db) names the database it serves")
        return self.db

    @property
    def _templates(self) -> PageTemplates:
        if self._pages is None:
            raise RuntimeError("FeedPublisher.init_app(app, db) names the database it serves")
        return self._pages

    def _read_head(self) -> Head | None:
        with self._uow.read() as session:
            return self.log.last(session)

    def serve_current(self) -> Response:
        """The current page; held while it still matches If-None-Match when the client asks `Prefer: wait=N`."""
        if self.head is None:
            raise RuntimeError("FeedPublisher.init_app(app, db) starts the head it serves")
        wait = requested_wait(request.headers.getlist("Prefer"))
        if wait is not None and request.headers.get("If-None-Match") is not None:
            self.start_listening()
        newest = self.head.get()  # from memory unless the log may have grown
        if wait is not None and self._matches(newest) and not self.signal.closed:
            # Held with no session and no connection: the listener's thread reads the head for every waiter.
            held = applied_wait(wait, self.max_wait)
            moved = self.signal.wait(newest[0] if newest else 0, held, recheck=self.head.get)
            # Woken: the head the listener read. Timed out (or stopping): the head as of now, 304 if unchanged.
            newest = moved if moved is not None and not self._matches(moved) else self.head.get()
            response = self._respond_current(newest, self._templates.current_once)
            response.headers["Preference-Applied"] = f"wait={held}"
            return response
        return self._respond_current(newest, self._templates.current)

    def _respond_current(self, newest: Head | None, template: Callable[[Page, datetime | None], bytes]) -> Response:
        page = current_page(newest[0] if newest else 0, self.page_size)
        updated = newest[1] if newest else self.origin
        return self._respond(page, updated, CURRENT_CACHE_CONTROL, lambda: template(page, updated))

    def _matches(self, newest: Head | None) -> bool:
        """Whether the request's If-None-Match names the current page at this head."""
        page = current_page(newest[0] if newest else 0, self.page_size)
        etag = entity_tag(FORMAT_VERSION, request.url_root, page.size, page.number, page.last,
                          newest[1] if newest else self.origin)
        return request.if_none_match.contains_weak(etag)

    def serve_page(self, raw: str) -> BaseResponse:
        """Archive page `raw`, or a redirect to the current page while that page is not full yet."""
        number = parse_page_number(raw)
        if number is None:
            raise NotFound()
        found = self._templates.archive(number)
        if found is not None:
            updated, template = found
            page = Page(number, self.page_size, number * self.page_size)
            return self._respond(page, updated, ARCHIVE_CACHE_CONTROL, lambda: template)
        newest = self._read_head()  # rare (a follower at the head), so read fresh rather than from memory
        if newest and newest[0] >= number * self.page_size and self._templates.archive(number) is not None:
            return self.serve_page(raw)  # filled since: positions commit in order, so it is all visible now
        if current_page(newest[0] if newest else 0, self.page_size).number == number:
            # Archives link the next one by its future URL (so their bytes never change); until that page
            # fills up, it is the current page.
            response = redirect(url_for(".current", _external=True), 302)  # absolute, as the feed's links
            response.headers["Cache-Control"] = "no-store"
            return response
        raise NotFound()

    def _respond(self, page: Page, updated: datetime | None, cache_control: str,
                 template: Callable[[], bytes]) -> Response:
        return respond(page, updated, self.log.now(), cache_control, template)  # now() never steps back

"""PageTemplates: where a feed page's template (its bytes with placeholders for the root URL, atom.fill) comes
from: the process's page cache, the archive table for full pages (archive.py), else the log, rendered once."""
from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy.orm import Session

from common.feeds.publish.archive import ArchiveStore
from common.feeds.publish.atom import LINK_ROOT, FeedSpec, PageLinks, render_template
from common.feeds.publish.cache import PageCache
from common.feeds.publish.log import NotificationLog
from common.feeds.publish.pages import EPOCH, Page
from common.feeds.publish.respond import relative_path
from common.feeds.uow import UnitOfWork

# Archive pages as (updated, template) under ("archive", k); current pages as templates under ("current", …).
TemplateCache = PageCache[tuple[datetime, bytes] | bytes]


class PageTemplates:
    """The templates of one publisher's pages, read from `db` and kept in `cache` (and `archives`, if any)."""

    def __init__(self, log: NotificationLog, spec: FeedSpec, page_size: int, cache: TemplateCache, db: UnitOfWork,
                 archives: ArchiveStore | None) -> None:
        self.log = log
        self.spec = spec
        self.page_size = page_size
        self.cache = cache
        self.db = db
        self.archives = archives
        self._render_lock = threading.Lock()

    def archive(self, number: int) -> tuple[datetime, bytes] | None:
        """(updated, template) of page `number` if it is full: from memory, else the table, else rendered once."""
        key = ("archive", number)
        found = self.cache.get(key)
        if isinstance(found, tuple):
            return found
        found = self.archives.get(self.page_size, number) if self.archives else None
        if found is None:
            with self.db.read() as session:
                # Positions are gap-free: page k is a full archive exactly when position k * size exists.
                updated = self.log.created_at(session, number * self.page_size)
                if updated is None:
                    return None
                found = (updated, self.render(session, Page(number, self.page_size, number * self.page_size),
                                              updated))
            if self.archives:
                self.archives.put(self.page_size, number, *found)
        self.cache.put(key, found)
        return found

    def current(self, page: Page, updated: datetime | None) -> bytes:
        """The current page's template, rendered once per process for each last position."""
        key = ("current", page.number, page.last)  # positions never change: this names the page's content
        template = self.cache.get(key)
        if not isinstance(template, bytes):
            with self.db.read() as session:
                template = self.render(session, page, updated)
            self.cache.put(key, template)
        return template

    def current_once(self, page: Page, updated: datetime | None) -> bytes:
        """`current` for many held requests woken at once: one renders, the others find it cached."""
        with self._render_lock:
            return self.current(page, updated)

    def render(self, session: Session, page: Page, updated: datetime | None) -> bytes:
        """The page's template: its bytes with placeholders for the root URL (see atom.fill)."""
        archive = page.is_archive
        current_url = LINK_ROOT + relative_path(".current")
        links = PageLinks(
            self_url=LINK_ROOT + relative_path(".page", raw=str(page.number)) if archive else current_url,
            current_url=current_url,
            prev_archive=LINK_ROOT + relative_path(".page", raw=str(page.number - 1)) if page.has_older else None,
            next_archive=LINK_ROOT + relative_path(".page", raw=str(page.number + 1)) if archive else None)
        rows = self.log.between(session, page.first, page.last)
        return render_template(self.spec, links, archive, updated or EPOCH, rows)

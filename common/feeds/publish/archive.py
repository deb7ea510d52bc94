"""Archive pages rendered once: a full page's bytes kept in a table of the publishing service's own.

A full archive page never changes (RFC 5005), so the first request that renders it stores it, and every later
request, in any process, at any depth of the feed, is one primary-key read (after the in-memory LRU, the first
level). The bytes are stored with a placeholder for the service's root URL (common/feeds/publish/atom.py `ROOT`),
filled in per request: the same page serves every host name a proxy forwards, and a request with a made-up Host
header stores nothing new.

A service adds it with one model on its Base and a migration creating the table:

    class ArchivePage(ArchivePageMixin, Base):
        pass

and names it in its `Publish(..., archive=ArchivePage)`.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from common.feeds.publish.log import UTCDateTime
from common.feeds.tables import TableMixin
from common.feeds.uow import UnitOfWork

log = logging.getLogger(__name__)


class ArchivePageMixin(TableMixin):
    """Columns of the table of rendered archive pages; mix into a model on the service's own Base."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "archive_pages"

    # A page is page `number` of the feed cut into pages of `page_size`: FEED_PAGE_SIZE may change.
    page_size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    format_version: Mapped[int] = mapped_column(Integer)  # atom.FORMAT_VERSION it was rendered with
    updated: Mapped[datetime] = mapped_column(UTCDateTime())  # its newest entry's time: part of its ETag
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the Atom bytes with atom.ROOT for the root URL


class ArchiveStore:
    """Reads and writes one table of archive pages."""

    def __init__(self, model: type[ArchivePageMixin], db: UnitOfWork, format_version: int) -> None:
        self.model = model
        self.db = db
        self.format_version = format_version

    def get(self, session: Session, page_size: int, number: int) -> tuple[datetime, bytes] | None:
        """(updated, template) of a stored page rendered by this format version, else None."""
        c = self.model.__table__.c  # Core: one primary-key read, no identity map for a blob read once
        found = session.connection().execute(select(c.format_version, c.updated, c.body)
                                             .where(c.page_size == page_size, c.number == number)).first()
        if found is None or found.format_version != self.format_version:
            return None
        return found.updated, found.body

    def put(self, page_size: int, number: int, updated: datetime, body: bytes) -> None:
        """Store a page in a short transaction of its own; another process having stored it first is fine."""
        try:
            with self.db.write() as session:
                session.merge(self.model(page_size=page_size, number=number, format_version=self.format_version,
                                         updated=updated, body=body))
        except IntegrityError:
            log.debug("archive page %d/%d was stored by another process first", page_size, number)

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
from typing import Any, cast

from sqlalchemy import Engine, Integer, LargeBinary, Row, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler

from common.feeds.publish.connections import autocommit_reader
from common.feeds.tables import Int64, TableMixin, UTCDateTime
from common.feeds.uow import UnitOfWork

log = logging.getLogger(__name__)


class _Dropped(Exception):
    """The reader's connection had been dropped by the server (it is invalidated): the read may be tried again."""


class ArchivePageMixin(TableMixin):
    """Columns of the table of rendered archive pages; mix into a model on the service's own Base."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "archive_pages"

    # A page is page `number` of the feed cut into pages of `page_size`: FEED_PAGE_SIZE may change.
    page_size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=False)  # up to position / page_size
    format_version: Mapped[int] = mapped_column(Integer)  # atom.FORMAT_VERSION it was rendered with
    updated: Mapped[datetime] = mapped_column(UTCDateTime())  # its newest entry's time: part of its ETag
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the Atom bytes with atom.ROOT for the root URL


class ArchiveStore:
    """Reads and writes one table of archive pages."""

    def __init__(self, model: type[ArchivePageMixin], db: UnitOfWork, format_version: int,
                 engine: Engine | None = None) -> None:
        self.model = model
        self.db = db
        self.format_version = format_version
        # Reads go straight to it when given (see get()); on PostgreSQL to an autocommit engine of its own.
        self._own_reader = engine is not None and engine.dialect.name == "postgresql"
        self.engine = autocommit_reader(engine) if engine is not None and self._own_reader else engine
        c = model.__table__.c
        self._compiled: tuple[SQLCompiler, list[Any]] | None = None
        self._select = select(c.format_version, c.updated, c.body).where(
            c.page_size == bindparam("page_size"), c.number == bindparam("number"))

    def get(self, page_size: int, number: int) -> tuple[datetime, bytes] | None:
        """(updated, template) of a stored page rendered by this format version, else None."""
        params = {"page_size": page_size, "number": number}
        found: tuple[Any, ...] | Row[Any] | None
        if self.engine is None:
            with self.db.read() as session:
                found = session.connection().execute(self._select, params).first()
        else:
            found = self._read(params)
        if found is None or found[0] != self.format_version:
            return None
        return found[1], found[2]

    def _read(self, params: dict[str, int]) -> tuple[Any, ...] | None:
        """The row by primary key on a pooled DB-API connection, with the statement compiled once.

        A stored page never changes, so its read needs no unit of work, and it is the one read an archive request
        at any depth makes once its page is out of the in-memory LRU: an ORM session costs 590 µs, a Core
        connection 240 µs, this 75 µs (SQLite, in process; bench/feed_speed.py's random-archive row). SQLAlchemy
        still compiles the statement and converts the values (its own result processors)."""
        assert self.engine is not None
        if self._compiled is None:
            dialect = self.engine.dialect
            compiled = self._select.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                          for column in self._select.selected_columns]
            self._compiled = (compiled, processors)
        compiled, processors = self._compiled
        bound = compiled.construct_params(params)
        arguments = [bound[name] for name in compiled.positiontup] if compiled.positiontup else bound
        row = self._fetch(compiled.string, arguments)
        if row is None:
            return None
        return tuple(process(value) if process else value for process, value in zip(processors, row, strict=True))

    def _fetch(self, statement: str, arguments: Any) -> Any:
        """The first row of `statement`; on PostgreSQL a connection the server dropped is replaced once."""
        try:
            return self._fetch_once(statement, arguments)
        except _Dropped:
            # The reader does not ping before each read (a round trip): a stale connection shows here, once.
            return self._fetch_once(statement, arguments, last_try=True)

    def _fetch_once(self, statement: str, arguments: Any, last_try: bool = False) -> Any:
        assert self.engine is not None
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                if self._own_reader:  # the body as its bytes, not as hex text: 274 → 229 µs a read
                    cast(Any, cursor).execute(statement, arguments, binary=True)
                else:
                    cursor.execute(statement, arguments)
                return cursor.fetchone()
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.OperationalError as exc:
            # Only a connection the server dropped is worth a second try; any other error is the answer.
            if self._own_reader and self.engine.dialect.is_disconnect(exc, connection.dbapi_connection, None):
                connection.invalidate()  # the pool must not hand out the dead connection again
                # Nor its idle companions: a restart or failover dropped them all, and the retry would take the
                # next dead one (SQLAlchemy's own disconnect handling likewise renews the whole pool).
                self.engine.dispose()
                if not last_try:
                    raise _Dropped() from exc
            raise
        finally:
            connection.close()  # back to the pool (SQLite: which rolls back what the driver began)

    def close(self) -> None:
        """Close the reader's own connections (PostgreSQL)."""
        if self._own_reader and self.engine is not None:
            self.engine.dispose()

    def put(self, page_size: int, number: int, updated: datetime, body: bytes) -> None:
        """Store a page in a short transaction of its own; another process having stored it first is fine."""
        try:
            with self.db.write() as session:
                session.merge(self.model(page_size=page_size, number=number, format_version=self.format_version,
                                         updated=updated, body=body))
        except IntegrityError:
            log.debug("archive page %d/%d was stored by another process first", page_size, number)


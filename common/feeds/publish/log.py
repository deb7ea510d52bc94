"""The notification log behind a feed: one row per event, numbered by a gap-free position."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Table, Text, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from common.feeds.publish.clock import SteadyClock, process_clock, utcnow
from common.feeds.tables import Int64, TableMixin, UTCDateTime

# Transaction-scoped advisory lock key on PostgreSQL ("atomfeed" in ASCII): held from position
# assignment to commit, so position n+1 can never become visible before position n.
APPEND_LOCK_KEY = 0x61746F6D66656564
# The smallest step between two stamps: the resolution both SQLite and PostgreSQL keep.
TICK = timedelta(microseconds=1)


class NotificationMixin(TableMixin):
    """Columns of a notifications table; mix into a model on the service's own Base."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "notifications"

    position: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=False)
    event_type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    document: Mapped[str] = mapped_column(Text)


class FeedOriginMixin(TableMixin):
    """One row saying when the feed began: the `updated` and Last-Modified of a feed with no entries yet."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "feed_origin"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    created: Mapped[datetime] = mapped_column(UTCDateTime())


def dumps(document: Any) -> str:
    """The JSON text stored for a document (kept verbatim: it is what the feed's content carries)."""
    return json.dumps(document, ensure_ascii=False)


class NotificationLog:
    """Appends and reads one notifications table."""

    def __init__(self, model: type[NotificationMixin], clock: Callable[[], datetime] = utcnow) -> None:
        if not isinstance(model.__table__, Table):
            raise TypeError(f"{model.__name__} must be mapped to a table")
        self.model = model
        self.table = model.__table__  # appends and head reads go through Core: no ORM overhead on the hot path
        self.clock = clock
        # PostgreSQL NOTIFY channel an append signals on commit (common/feeds/publish/notify.py listens).
        self.channel = f"atomshop_{self.table.name}"
        # Built once: building a statement costs about as much as running it.
        c = self.table.c
        self._lock = text("SELECT pg_advisory_xact_lock(:key), pg_notify(:channel, '')").bindparams(
            key=APPEND_LOCK_KEY, channel=self.channel)
        self._last = select(c.position, c.created).order_by(c.position.desc()).limit(1)
        self._insert = insert(self.table)
        # PostgreSQL: the INSERT works out the next position and stamp from the newest row itself (see append).
        self._insert_next = text(f"""INSERT INTO {self.table.name} (position, event_type, created, document)
            SELECT COALESCE(newest.position, 0) + 1, :event_type,
                   GREATEST(:now, newest.created + interval '1 microsecond'), :document
            FROM (SELECT 1) AS one LEFT JOIN (
                SELECT position, created FROM {self.table.name} ORDER BY position DESC LIMIT 1
            ) AS newest ON true
            RETURNING position, created""").bindparams(bindparam("now", type_=UTCDateTime())).columns(
            position=Int64, created=UTCDateTime())

    @property
    def clock(self) -> Callable[[], datetime]:
        """The wall clock the log reads (settable: tests freeze it)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        # The system clock's floor is the process's, shared with every other log on it, and looked up on each call
        # (tests put a stepping clock in its place after the app is built); another clock (a test's) keeps its own.
        self._steady = None if clock is utcnow else SteadyClock(clock)

    def now(self) -> datetime:
        """The wall clock, never earlier than a time this process has read or stamped before.

        A clock stepped back stands still here until it catches up, so a Last-Modified given out before the step
        is never ahead of the stamps that follow it (If-Modified-Since cannot hide them).
        """
        return (self._steady or process_clock()).now()

    def lock(self, session: Session) -> None:
        """Take the append lock in the caller's transaction now rather than at its first append (held to its end).

        For a transaction that locks a row and then appends: a follower's transaction may append first and lock
        that row after, so taking this lock first keeps one order and the two cannot deadlock. On SQLite write
        transactions are serialized from their BEGIN IMMEDIATE already."""
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            conn.execute(self._lock)

    def append(self, session: Session, event_type: str, document: Any) -> NotificationMixin:
        """Add the next notification in the caller's transaction (the unit of work) and return it (not in the
        session: the row is in the database once that commits)."""
        conn = session.connection()
        if conn.dialect.name != "postgresql":
            return self.append_many(session, [(event_type, document)])[0]
        stored = document if isinstance(document, str) else dumps(document)  # needs no position: before the lock
        # One round trip: the lock, and the notification every process's head listens for (sent at commit). Then
        # one more, the last with the lock held but the COMMIT: the INSERT reads the newest row itself (position
        # + 1, the later of now and its stamp + TICK: the rules of append_many) and returns what it wrote.
        conn.execute(self._lock)
        position, created = conn.execute(self._insert_next, {
            "event_type": event_type, "now": self.now(), "document": stored}).one()
        self._stamped(created)
        return self.model(position=position, event_type=event_type, created=created, document=stored)

    def append_many(self, session: Session, notifications: Sequence[tuple[str, Any]]) -> list[NotificationMixin]:
        """Add (event type, document) notifications, in that order, in the caller's transaction: one read of the
        newest row and one INSERT for all of them, rather than one each (a follower's batch, a group of orders)."""
        if not notifications:
            return []
        conn = session.connection()
        if len(notifications) == 1 and conn.dialect.name == "postgresql":
            return [self.append(session, *notifications[0])]  # one round trip fewer under the lock
        stored = [(event_type, document if isinstance(document, str) else dumps(document))
                  for event_type, document in notifications]  # need no position: before the lock
        self.lock(session)
        previous = conn.execute(self._last).first()
        position, created = (previous[0], previous[1]) if previous else (0, None)
        rows: list[dict[str, Any]] = []
        for event_type, document in stored:
            position += 1
            # Stamped under the lock, strictly after the previous one whatever the clock does (another process
            # may run ahead, the clock may step back): time order == position order, and no two entries share a
            # stamp, so each new entry moves Last-Modified forward.
            moment = self.now()
            created = moment if created is None or moment > created else created + TICK
            rows.append({"position": position, "event_type": event_type, "created": created, "document": document})
        # Core on the session's connection: the ORM's unit of work would add nothing here but its overhead.
        conn.execute(self._insert, rows)
        self._stamped(rows[-1]["created"])
        return [self.model(**row) for row in rows]

    def _stamped(self, created: datetime) -> None:
        """What was stamped counts as read: now() never goes back behind it."""
        (self._steady or process_clock()).saw(created)

    def last(self, session: Session) -> tuple[int, datetime] | None:
        """(position, created) of the newest notification, by the primary key index; None when empty."""
        found = session.connection().execute(self._last).first()
        return (found[0], found[1]) if found else None

    def created_at(self, session: Session, position: int) -> datetime | None:
        """Time of the notification at `position`, or None if there is none (yet)."""
        m = self.model
        return session.scalar(select(m.created).where(m.position == position))

    def origin(self, session: Session, model: type[FeedOriginMixin]) -> datetime:
        """When the feed began, stored in `model` (a FeedOriginMixin table) on first use: the first entry's time
        when there is one (a feed older than this table), else now. Every later call returns the same time."""
        found = session.scalar(select(model.created).where(model.id == 1))
        if found is not None:
            return found
        first = self.created_at(session, 1)
        try:
            with session.begin_nested():
                session.add(model(id=1, created=first or self.clock()))
        except IntegrityError:
            pass  # another instance stored it first
        return session.scalars(select(model.created).where(model.id == 1)).one()

    def between(self, session: Session, first: int, last: int) -> list[NotificationMixin]:
        """Notifications first…last, newest first."""
        m = self.model
        if last < first:
            return []
        stmt = select(m).where(m.position >= first, m.position <= last).order_by(m.position.desc())
        return list(session.scalars(stmt))

"""The follower's tables, added to a consumer service's own Base (tracking record, dead letters), and its
tracking record's reads and compare-and-set advances."""
from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, DateTime, Integer, String, Text, UniqueConstraint, insert, select, update
from sqlalchemy.engine import Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column

from common.feeds.tables import TableMixin
from common.feeds.uow import UnitOfWork

M = TypeVar("M")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run by Session.execute() matched."""
    return cast(CursorResult[Any], result).rowcount  # what such a statement's result is; typed as its base


def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC (SQLite hands back naive datetimes, which are UTC here)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TrackingMixin(TableMixin):
    """Columns of the tracking table, per consumer: the last handled feed position and where to resume reading."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "follower_tracking"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # URL of the page that holds `position`, so a restart costs one request per page.
    bookmark: Mapped[str | None] = mapped_column(String(2000))
    # ETag of the current page, kept only when every entry on it has been handled.
    etag: Mapped[str | None] = mapped_column(String(500))
    # Attempts at the entry after `position`, which keeps failing (a poison entry in the making).
    retry_position: Mapped[int | None] = mapped_column(Integer)
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_reason: Mapped[str | None] = mapped_column(Text)
    # The atom:id and atom:updated of the entry at `position`: each pass checks the feed still holds it there.
    entry_id: Mapped[str | None] = mapped_column(Text)
    entry_updated: Mapped[str | None] = mapped_column(String(100))
    # Why the follower halted (history rewritten), kept until an operator resets the position.
    halted_reason: Mapped[str | None] = mapped_column(Text)
    halted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    dead_lettered: Mapped[int] = mapped_column(Integer, default=0)
    # When a pass last ended without error, so a restarted service can still say when it last polled.
    last_poll: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeadLetterMixin(TableMixin):
    """Columns of the dead-letter table: an entry the handler failed on too many times, kept with the reason so
    it can be retried."""

    @declared_attr.directive
    def __tablename__(cls) -> str:
        return "follower_dead_letters"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[UniqueConstraint]:
        return (UniqueConstraint("consumer", "position"),)  # a new one per table: a constraint has one table

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer: Mapped[str] = mapped_column(String(100), index=True)
    position: Mapped[int] = mapped_column(Integer)
    entry_id: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(200))
    link: Mapped[str | None] = mapped_column(Text)
    updated: Mapped[str | None] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def to_json(self) -> dict[str, Any]:
        """The dead letter as GET …/dead-letters lists it."""
        return {"id": self.id, "consumer": self.consumer, "position": self.position, "entry_id": self.entry_id,
                "event_type": self.event_type, "link": self.link, "reason": self.reason,
                "attempts": self.attempts, "created": rfc3339(self.created),
                "content": self.content}


@dataclass(frozen=True)
class TrackingModels:
    """The two mapped classes a FeedFollower needs, bound to one service's Base."""

    Tracking: type[TrackingMixin]
    DeadLetter: type[DeadLetterMixin]


def tracking_models(base: type[DeclarativeBase]) -> TrackingModels:
    """Define the tracking and dead-letter tables on `base` (call once per service, at import of its models)."""
    return TrackingModels(_mapped("Tracking", TrackingMixin, base), _mapped("DeadLetter", DeadLetterMixin, base))


def _mapped(name: str, mixin: type[M], base: type[DeclarativeBase]) -> type[M]:
    # `class Tracking(TrackingMixin, base)` with a base known only at run time is a class statement type checkers
    # cannot follow, so the class is made as that statement would make it; it is a `mixin` by construction.
    namespace = {"__doc__": mixin.__doc__, "__module__": __name__}
    return cast(type[M], types.new_class(name, (mixin, base), exec_body=lambda ns: ns.update(namespace)))


@dataclass
class Tracked:
    """A consumer's tracking record as last read or written."""

    position: int = 0
    bookmark: str | None = None
    etag: str | None = None
    retry_position: int | None = None
    retry_attempts: int = 0
    entry_id: str | None = None
    entry_updated: str | None = None
    halted: str | None = None


class TrackingStore:
    """Reads and compare-and-set advances of one consumer's tracking record."""

    def __init__(self, db: UnitOfWork, model: type[TrackingMixin], consumer: str) -> None:
        self.db = db
        self.model = model
        self.consumer = consumer

    def read(self, session: Session, lock: bool = False) -> Tracked:
        """The record in the caller's transaction (FOR UPDATE with `lock`), created at position 0 if missing."""
        T = self.model
        query = select(T.position, T.bookmark, T.etag, T.retry_position, T.retry_attempts, T.entry_id,
                       T.entry_updated, T.halted_reason).where(T.consumer == self.consumer)
        if lock:
            query = query.with_for_update()
        row = session.execute(query).one_or_none()
        if row is None:
            try:
                with session.begin_nested():
                    session.execute(insert(T).values(consumer=self.consumer, position=0, retry_attempts=0,
                                                     handled=0, skipped=0, dead_lettered=0))
            except IntegrityError:
                pass  # another instance created it first
            row = session.execute(query).one()
        return Tracked(row.position, row.bookmark, row.etag, row.retry_position, row.retry_attempts or 0,
                       row.entry_id, row.entry_updated, row.halted_reason)

    def load(self) -> Tracked:
        """The durable record (created at position 0 if missing)."""
        with self.db.read() as session:
            if session.get(self.model, self.consumer) is not None:
                return self.read(session)
        with self.db.write() as session:
            return self.read(session)

    def advance(self, session: Session, old: Tracked, new: Tracked, counts: dict[str, int],
                retry_reason: str | None) -> bool:
        """UPDATE … WHERE position = old.position (and not halted): False when another instance moved first."""
        T = self.model
        result = session.execute(
            update(T).where(T.consumer == self.consumer, T.position == old.position, T.halted_reason.is_(None)).values(
                position=new.position, bookmark=new.bookmark, etag=new.etag, entry_id=new.entry_id,
                entry_updated=new.entry_updated, retry_position=new.retry_position,
                retry_attempts=new.retry_attempts, retry_reason=retry_reason,
                handled=T.handled + counts["handled"], skipped=T.skipped + counts["skipped"],
                dead_lettered=T.dead_lettered + counts["dead_lettered"]))
        return rowcount(result) == 1

    def record_entry(self, position: int, entry_id: str, updated: str | None) -> None:
        """Remember which entry `position` names, when the record does not say yet (an older record, a reset)."""
        T = self.model
        with self.db.write() as session:
            session.execute(update(T).where(T.consumer == self.consumer, T.position == position,
                                            T.entry_id.is_(None)).values(entry_id=entry_id, entry_updated=updated))

    def halt(self, reason: str) -> str:
        """Halt durably (every instance and every restart sees it); returns the reason in force."""
        T = self.model
        with self.db.write() as session:
            session.execute(update(T).where(T.consumer == self.consumer, T.halted_reason.is_(None)).values(
                halted_reason=reason, halted_at=utcnow(), etag=None))
            return session.scalar(select(T.halted_reason).where(T.consumer == self.consumer)) or reason

    def reset(self, position: int) -> Tracked:
        """The operator's way out: set the position, clear the halt, bookmark, ETag, recorded entry and retries.

        Returns the record as it was. The next pass records the entry the feed holds at `position`."""
        if position < 0:
            raise ValueError("a position is 0 or more")
        T = self.model
        with self.db.write() as session:
            old = self.read(session, lock=True)
            session.execute(update(T).where(T.consumer == self.consumer).values(
                position=position, bookmark=None, etag=None, entry_id=None, entry_updated=None,
                halted_reason=None, halted_at=None, retry_position=None, retry_attempts=0, retry_reason=None))
        return old

    def record_poll(self, moment: datetime) -> None:
        """Store the time of a successful pass (a plain UPDATE: the position is not touched)."""
        T = self.model
        with self.db.write() as session:
            session.execute(update(T).where(T.consumer == self.consumer).values(last_poll=moment))

    def stats(self) -> dict[str, Any]:
        """Position and durable counters, for /health."""
        with self.db.read() as session:
            row = session.get(self.model, self.consumer)
            if row is None:
                return {"position": 0, "handled": 0, "skipped": 0, "dead_lettered": 0, "retrying": None,
                        "halted": None, "last_poll": None}
            return {"position": row.position, "handled": row.handled, "skipped": row.skipped,
                    "halted": ({"reason": row.halted_reason, "since": rfc3339(row.halted_at)}
                               if row.halted_reason else None),
                    "dead_lettered": row.dead_lettered, "last_poll": row.last_poll,
                    "retrying": ({"position": row.retry_position, "attempts": row.retry_attempts,
                                  "reason": row.retry_reason} if row.retry_position else None)}

"""The follower's tables, added to a consumer service's own Base (tracking record, dead letters; their columns in
tracking_tables.py), its tracking record's reads and compare-and-set advances, and the time of its last poll."""
from __future__ import annotations

import logging
import types
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.engine import Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session

from common.feeds.follow.tracking_tables import DeadLetterMixin, TrackingMixin, rfc3339, utcnow
from common.feeds.uow import UnitOfWork

M = TypeVar("M")
__all__ = ["DeadLetterMixin", "PollTimes", "Tracked", "TrackingMixin", "TrackingModels", "TrackingStore", "rfc3339",
           "rowcount", "tracking_models", "utcnow"]

log = logging.getLogger(__name__)

RECORD_POLL_EVERY = 10.0  # seconds: an idle follower stores its last poll time at most this often


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run by Session.execute() matched."""
    return cast(CursorResult[Any], result).rowcount  # what such a statement's result is; typed as its base


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
        """UPDATE … WHERE position = old.position (and not halted): False when another instance moved first.

        Without synchronize_session: the record is never loaded as an object in the session, and the ORM's search
        of the session for objects to update doubled the cost of a one-entry transaction (2.7 vs 1.4 ms, SQLite).
        """
        T = self.model
        result = session.execute(
            update(T).where(T.consumer == self.consumer, T.position == old.position, T.halted_reason.is_(None)).values(
                position=new.position, bookmark=new.bookmark, etag=new.etag, entry_id=new.entry_id,
                entry_updated=new.entry_updated, retry_position=new.retry_position,
                retry_attempts=new.retry_attempts, retry_reason=retry_reason,
                handled=T.handled + counts["handled"], skipped=T.skipped + counts["skipped"],
                dead_lettered=T.dead_lettered + counts["dead_lettered"]).execution_options(synchronize_session=False))
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
            session.execute(update(T).where(T.consumer == self.consumer).values(last_poll=moment)
                            .execution_options(synchronize_session=False))

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


class PollTimes:
    """When a follower last polled successfully, as stored in its tracking record (stats()["last_poll"])."""

    def __init__(self, store: TrackingStore, consumer: str) -> None:
        self.store = store
        self.consumer = consumer
        self._recorded: datetime | None = None  # when the time of a poll was last stored

    def record(self, moment: datetime, handled: int) -> None:
        """Store a successful pass's time when it handled entries, else at most every 10 s."""
        if handled or self._recorded is None or (moment - self._recorded).total_seconds() >= RECORD_POLL_EVERY:
            try:
                self.store.record_poll(moment)
                self._recorded = moment
            except Exception as exc:  # the pass did succeed: a busy database only delays this note
                log.warning("%s: could not store the time of the last poll: %s", self.consumer, exc)

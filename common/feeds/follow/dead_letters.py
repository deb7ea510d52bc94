"""Entries a consumer gave up on: stored with the reason, listed, and retried on demand."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from common.feeds.follow.client import FeedClient, FeedEntry
from common.feeds.follow.tracking import DeadLetterMixin, rowcount, utcnow
from common.feeds.uow import UnitOfWork


class DeadLetters:
    """One consumer's dead-letter table."""

    def __init__(self, db: UnitOfWork, model: type[DeadLetterMixin], consumer: str, client: FeedClient) -> None:
        self.db = db
        self.model = model
        self.consumer = consumer
        self.client = client

    def add(self, session: Session, entry: FeedEntry, reason: str, attempts: int) -> None:
        """Store the entry in the caller's transaction (the one that moves the position past it), in place of a
        letter kept for its position before (the entry failed again after the position was reset behind it)."""
        D = self.model
        session.execute(delete(D).where(D.consumer == self.consumer, D.position == entry.position))
        session.execute(insert(self.model).values(
            consumer=self.consumer, position=entry.position, entry_id=entry.id, event_type=entry.event_type,
            link=entry.link, updated=entry.updated, content=entry.content, reason=reason, attempts=attempts,
            created=utcnow()))

    def list(self) -> list[dict[str, Any]]:
        """The dead letters, oldest position first."""
        D = self.model
        with self.db.read() as session:
            rows = session.scalars(select(D).where(D.consumer == self.consumer).order_by(D.position)).all()
            return [row.to_json() for row in rows]

    def count(self) -> int:
        """How many dead letters this consumer holds."""
        D = self.model
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(D).where(D.consumer == self.consumer)) or 0

    def retry(self, letter_id: int, handler: Callable[[Session, FeedEntry], None]) -> None:
        """Run `handler` again for a dead letter: removed on success; LookupError if unknown, else re-raises."""
        D = self.model
        with self.db.read() as session:
            letter = session.get(D, letter_id)
            if letter is None or letter.consumer != self.consumer:
                raise LookupError(f"no dead letter {letter_id}")
            entry = FeedEntry(letter.position, letter.entry_id, letter.event_type, letter.content, letter.link,
                              letter.updated)
        # The entry's alternate link serves the document as its publisher holds it now: if that was corrected
        # since, the retry uses it (archived feed pages never change); otherwise the content as received.
        # Only on the feed's origin (ForeignOrigin otherwise, and the letter stays); the handler checks the
        # document against its published model and the entry (same id), as it checks one read from the feed.
        try:
            current = self.client.fetch_document(entry.link) if entry.link else None
        except Exception as exc:
            self._failed(letter_id, exc)
            raise
        if current is not None:
            entry = FeedEntry(entry.position, entry.id, entry.event_type, current, entry.link, entry.updated)
        try:
            with self.db.write() as session:
                handler(session, entry)
                if rowcount(session.execute(delete(D).where(D.id == letter_id))) != 1:
                    raise LookupError(f"dead letter {letter_id} was retried by someone else meanwhile")
        except LookupError:
            raise
        except Exception as exc:
            self._failed(letter_id, exc)
            raise

    def _failed(self, letter_id: int, exc: Exception) -> None:
        D = self.model
        with self.db.write() as session:
            session.execute(update(D).where(D.id == letter_id).values(
                reason=f"{type(exc).__name__}: {exc}", attempts=D.attempts + 1))

    def owns(self, letter_id: int) -> bool:
        """Whether dead letter `letter_id` is one of this consumer's."""
        D = self.model
        with self.db.read() as session:
            return session.scalar(select(D.id).where(D.id == letter_id, D.consumer == self.consumer)) is not None

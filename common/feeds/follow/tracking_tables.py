"""The follower's table mixins (tracking record, dead letters) and the time helpers their columns use."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from common.feeds.tables import Int64, TableMixin


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


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
    position: Mapped[int] = mapped_column(Int64, default=0)
    # URL of the page that holds `position`, so a restart costs one request per page.
    bookmark: Mapped[str | None] = mapped_column(String(2000))
    # ETag of the current page, kept only when every entry on it has been handled.
    etag: Mapped[str | None] = mapped_column(String(500))
    # Attempts at the entry after `position`, which keeps failing (a poison entry in the making).
    retry_position: Mapped[int | None] = mapped_column(Int64)
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_reason: Mapped[str | None] = mapped_column(Text)
    # The atom:id and atom:updated of the entry at `position`: each pass checks the feed still holds it there.
    entry_id: Mapped[str | None] = mapped_column(Text)
    entry_updated: Mapped[str | None] = mapped_column(String(100))
    # Why the follower halted (history rewritten), kept until an operator resets the position.
    halted_reason: Mapped[str | None] = mapped_column(Text)
    halted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # One per entry: as many as the feed has positions.
    handled: Mapped[int] = mapped_column(Int64, default=0)
    skipped: Mapped[int] = mapped_column(Int64, default=0)
    dead_lettered: Mapped[int] = mapped_column(Int64, default=0)
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

    id: Mapped[int] = mapped_column(Int64, primary_key=True)  # at most one per entry, like dead_lettered
    consumer: Mapped[str] = mapped_column(String(100), index=True)
    position: Mapped[int] = mapped_column(Int64)
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

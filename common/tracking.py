"""The follower's tables, added to a consumer service's own Base: its tracking record and its dead letters."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC (SQLite hands back naive datetimes, which are UTC here)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class TrackingModels:
    """The two mapped classes a FeedFollower needs, bound to one service's Base."""

    Tracking: type
    DeadLetter: type


def tracking_models(base: type[DeclarativeBase]) -> TrackingModels:
    """Define the tracking and dead-letter tables on `base` (call once per service, at import of its models)."""

    class Tracking(base):
        """Per consumer: the last handled feed position and where to resume reading."""

        __tablename__ = "follower_tracking"
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
        handled: Mapped[int] = mapped_column(Integer, default=0)
        skipped: Mapped[int] = mapped_column(Integer, default=0)
        dead_lettered: Mapped[int] = mapped_column(Integer, default=0)

    class DeadLetter(base):
        """An entry the handler failed on too many times, kept with the reason so it can be retried."""

        __tablename__ = "follower_dead_letters"
        __table_args__ = (UniqueConstraint("consumer", "position"),)
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

        def to_json(self) -> dict:
            return {"id": self.id, "consumer": self.consumer, "position": self.position, "entry_id": self.entry_id,
                    "event_type": self.event_type, "link": self.link, "reason": self.reason,
                    "attempts": self.attempts, "created": rfc3339(self.created),
                    "content": self.content}

    return TrackingModels(Tracking, DeadLetter)

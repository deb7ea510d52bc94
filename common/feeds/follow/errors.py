"""What a follower's pass can end with besides success."""
from __future__ import annotations


class FeedError(Exception):
    """The feed could not be read (network, HTTP status, size, XML, missing links); nothing was advanced."""

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the feed asked to be left alone (Retry-After on 429/503)


class FollowerHalted(Exception):
    """The feed no longer holds the entry this follower's position names (history was rewritten): it applies
    nothing until an operator resets its position; the reason is kept in the tracking record."""


class PassRunning(Exception):
    """A pass of this feed is already running in this process, and did not finish within the wait allowed."""


class Stopped(Exception):
    """The process is stopping: the pass ended between two transactions."""


class PageGone(FeedError):
    """The page answered 404 or 410 (a bookmark to a page the feed no longer has)."""

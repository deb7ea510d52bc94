"""The one origin (scheme, host, port) a follower may talk to: that of the feed URL it was configured with."""
from __future__ import annotations

from urllib.parse import urlsplit

from common.feeds.follow.errors import FeedError

_DEFAULT_PORTS = {"http": 80, "https": 443}


class ForeignOrigin(FeedError):
    """A link, redirect or alternate link that leads off the feed's origin: reported, never requested."""


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, with the scheme's default port filled in; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. a port that is not a number
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


class Origin:
    """The origin of a feed URL; `check` refuses any URL elsewhere."""

    def __init__(self, feed_url: str) -> None:
        self.feed_url = feed_url
        value = origin_of(feed_url)
        if value is None:
            raise ValueError(f"{feed_url!r} is not an http or https URL")
        self.value: tuple[str, str, int] = value

    def holds(self, url: str | None) -> bool:
        """Whether `url` is on this origin."""
        return url is not None and origin_of(url) == self.value

    def check(self, url: str, what: str = "link") -> str:
        """`url` itself when it is on this origin, else ForeignOrigin naming the feed and the refused URL."""
        if not self.holds(url):
            scheme, host, port = self.value
            raise ForeignOrigin(f"{self.feed_url}: refusing a {what} to {_short(url)}, off the feed's origin "
                                f"{scheme}://{host}:{port}")
        return url

    def __repr__(self) -> str:
        return f"Origin({self.feed_url!r})"


def _short(url: str) -> str:
    return repr(url if len(url) <= 200 else url[:200] + "…")

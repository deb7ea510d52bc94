"""What a person reads when a followed feed cannot be read: one sentence, the technical text kept apart."""
from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

# (pattern in the technical text, what it means for people, whether the other side answered at all)
_CAUSES = [
    # The socket's refusal only: a page the follower refuses ("…, which is refused") is the page's fault.
    (re.compile(r"connection refused|ConnectionRefused|Errno 111|actively refused", re.I), "connection refused",
     False),
    (re.compile(r"timed? ?out|not received within", re.I), "no answer in time", False),
    (re.compile(r"Name or service not known|getaddrinfo|nodename nor servname|resolve", re.I),
     "its host name is unknown", False),
    (re.compile(r"reset by peer|RemoteDisconnected|aborted|closed", re.I), "the connection was dropped", False),
    (re.compile(r"cannot connect", re.I), "cannot connect", False),
    (re.compile(r"HTTP (\d{3})"), "it answers HTTP {0}", True),
    (re.compile(r"limit|more than \d+ attributes", re.I), "a page is too large", True),
    (re.compile(r"DTD|entities", re.I), "a page declares a DTD, which is refused", True),
    (re.compile(r"ill-formed|cannot be parsed|not UTF-8|page is empty", re.I), "a page is not well-formed XML", True),
    (re.compile(r"not an Atom", re.I), "a page is not an Atom feed", True),
    (re.compile(r"lacks the link|prev-archive|no valid atomshop:position", re.I),
     "a page breaks the feed's paging rules", True),
]


def short_cause(technical: str) -> tuple[str, bool]:
    """(a few words on what went wrong, whether the server answered) from a follower's error text."""
    for pattern, words, answered in _CAUSES:
        found = pattern.search(technical)
        if found:
            return words.format(*found.groups()), answered
    return "an unexpected answer; see the detail", True


def clock_time(moment: datetime) -> str:
    """10:02:13 UTC (a date in front when it is not today)."""
    moment = moment.astimezone(UTC)
    today = datetime.now(UTC).date()
    return moment.strftime("%H:%M:%S UTC" if moment.date() == today else "%Y-%m-%d %H:%M:%S UTC")


def next_try(poller_status: dict[str, Any] | None) -> str:
    """When the poller tries again: "next try in 20 s", or how to try when nothing is scheduled."""
    if not poller_status or not poller_status.get("interval"):
        return "scheduled polls are off: press Poll now to try again"
    backing_off = poller_status.get("backing_off_for") or 0.0
    # A served poller's long-poll thread tries again as soon as the back-off ends (unless the feed ignores Prefer);
    # otherwise the next scheduled poll after it does.
    long_polls = poller_status.get("long_poll_wait") and poller_status.get("long_polling") is not False
    threaded = bool(poller_status.get("running") and long_polls)
    wait = backing_off if threaded else max(backing_off, poller_status["interval"])
    return f"next try in {max(1, math.ceil(wait))} s"


def problem_sentence(title: str, feed_url: str, technical: str | None, since: datetime | None,
                     poller_status: dict[str, Any] | None) -> str | None:
    """"The order feed at http://… is not answering (connection refused) since 10:02:13 UTC; next try in 20 s."
    None when there is no problem to tell."""
    if not technical:
        return None
    cause, answered = short_cause(technical)
    what = "cannot be read" if answered else "is not answering"
    when = f" since {clock_time(since)}" if since else ""
    return f"{title[:1].upper()}{title[1:]} at {feed_url} {what} ({cause}){when}; {next_try(poller_status)}."

"""What /health, /metrics and the status panel say about each follower: position, lag, problems, halts."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from common.feeds import FeedFollower
from common.feeds.follow.tracking import rfc3339
from common.service.consumer import ServiceFollower, followers
from common.service.outage import problem_sentence


def halted_reason(f: FeedFollower) -> str | None:
    """Why the follower halted (it applies nothing until an operator resets its position), or None."""
    halted = f.stats().get("halted")
    return halted["reason"] if halted else None


def problem(f: ServiceFollower) -> str | None:
    """The follower's trouble in one sentence for people (None when there is none); last_error keeps the detail."""
    if not f.last_error:
        return None
    if f.failing_since is None:  # the pass worked; one entry keeps failing and is being retried
        return f"An entry of {f.title} keeps failing and is being retried; the entries after it wait."
    return problem_sentence(f.title, f.feed_url, f.last_error, f.failing_since, f.poller.status())


def follower_status(f: ServiceFollower) -> dict[str, Any]:
    """Everything /health and the status panel show about one follower."""
    status: dict[str, Any] = {
        "consumer": f.name, "feed_url": f.feed_url, "last_poll": rfc3339(f.last_poll), "problem": problem(f),
        "last_error": f.last_error, "poll_interval": current_app.config["POLL_INTERVAL"], "polls": f.polls,
        "failed_polls": f.failures, "poller": f.poller.status()}
    try:
        stats = f.stats()
        stored_poll = stats.pop("last_poll", None)  # the last poll before a restart, or by another instance
        if stored_poll is not None and (f.last_poll is None or _aware(stored_poll) > f.last_poll):
            status["last_poll"] = rfc3339(stored_poll)
        status.update(stats)
        status["dead_letters"] = f.dead_letters()
    except SQLAlchemyError as exc:  # stay up and say so
        status.update(position=None, database_error=f"{type(exc).__name__}: {exc}")
    halted = status.get("halted")
    status["state"] = "halted" if halted else "following"
    status["caught_up"] = f.caught_up
    if halted:
        status["reason"] = halted["reason"]
        status["problem"] = f"Following {f.title} is halted: {halted['reason']}"
        status["what_to_do"] = (f"Find the position in {f.feed_url} from which to resume, then run "
                                f"`{current_app.config['SERVICE_NAME']}-service reset-position --feed {f.feed_url} "
                                "--to <position>` (the service may keep running).")
    status.update(_lag(f, status.get("position")))
    return status


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lag(f: FeedFollower, position: int | None) -> dict[str, Any]:
    """The head this follower last saw and its lag behind it (null before it read the feed, or with no database)."""
    lag = f.lag(position) if position is not None else None
    if lag is None:
        return {"head_position": None, "lag_entries": None, "lag_seconds": None}
    return {"head_position": lag.head.position, "lag_entries": lag.entries,
            "lag_seconds": None if lag.seconds is None else round(lag.seconds, 3)}


def consumer_status() -> dict[str, Any]:
    """The first feed's status at the top level (the status panel), every feed's under "feeds"."""
    every = {f.name: follower_status(f) for f in followers()}
    first = next(iter(every.values()))
    return {"status": "ok", "service": current_app.config["SERVICE_NAME"], **first,
            "feeds": {name: {**s, "dead_letters": len(s.get("dead_letters", ()))} for name, s in every.items()}}

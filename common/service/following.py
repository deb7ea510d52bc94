"""The feeds a service follows: one follower and poller per feed, `POST /poll`, dead letters, their pages."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from common.feeds import BatchHandler, FeedClient, FeedError, FeedFollower, Handler, Poller, TrackingModels, UnitOfWork
from common.feeds.follow.errors import FollowerHalted, PassRunning
from common.feeds.follow.tracking import rfc3339
from common.service.cli import BACKGROUND_KEY
from common.service.config import env_float
from common.service.outage import problem_sentence
from common.service.security import same_origin_path

log = logging.getLogger(__name__)
FOLLOWERS_KEY = "atomshop.followers"
FOLLOWER_KEY = "atomshop.follower"  # the first feed followed, which the status panel shows
POLL_WAIT = 30.0  # seconds POST /poll waits for a pass already running (CONTRACT.md), then answers 202

bp = Blueprint("consumer", __name__, template_folder="templates")


@dataclass(frozen=True)
class Follow:
    """One feed a service follows: where it is, and what its events do in this service."""

    name: str  # names the tracking record and the dead letters, e.g. "orders"
    url_variable: str  # the environment variable holding the feed URL, e.g. "ORDER_FEED_URL"
    default_url: str
    handler: Handler
    batch_handler: BatchHandler | None = None
    event_types: frozenset[str] | None = None  # None: every type
    title: str = "the feed"  # in messages for people: "the order feed could not be read"


class ServiceFollower(FeedFollower):
    """A follower as a service runs it: a title for people, and the poller that reads its feed on a schedule."""

    title: str
    poller: Poller


def follow_config(follows: tuple[Follow, ...]) -> dict[str, Any]:
    """Each feed's URL (its variable, else its default), POLL_INTERVAL (seconds, 0 = no background reads) and
    LONG_POLL_WAIT (seconds a long poll asks the feed to hold it, 0 = scheduled polls only)."""
    config = {f.url_variable: os.environ.get(f.url_variable) or f.default_url for f in follows}
    return {**config, "POLL_INTERVAL": env_float("POLL_INTERVAL", 5.0),
            "LONG_POLL_WAIT": env_float("LONG_POLL_WAIT", 20.0)}


def init_app(app: Flask, db: UnitOfWork, tracking: TrackingModels, follows: tuple[Follow, ...]) -> None:
    """Give the app a follower and a scheduled poller (started by common.service.cli.serve) per feed, and routes."""
    followers: dict[str, ServiceFollower] = {}
    for spec in follows:
        follower = ServiceFollower(app.config[spec.url_variable], spec.name, db, spec.handler, tracking,
                                event_types=spec.event_types, batch_handler=spec.batch_handler,
                                client=FeedClient(token=app.config.get("FEED_TOKEN"),
                                                  origin=app.config[spec.url_variable]))
        follower.title = spec.title
        follower.poller = Poller(follower, app.config["POLL_INTERVAL"], wait=app.config.get("LONG_POLL_WAIT", 0))
        background = app.extensions.setdefault(BACKGROUND_KEY, [])
        if app.config["POLL_INTERVAL"] > 0:  # with 0 nothing runs in the background: any number of workers may serve
            background.append(follower.poller)
        followers[spec.name] = follower
    app.extensions[FOLLOWERS_KEY] = followers
    app.extensions[FOLLOWER_KEY] = next(iter(followers.values()))
    app.register_blueprint(bp)
    for view in (poll, retry_api):  # JSON for programs: no browser form to forge
        app.extensions["csrf"].exempt(view)
    app.register_error_handler(HTTPException, _json_errors_for_programs)
    app.context_processor(lambda: {"consumer_status": consumer_status, "csrf_token_value": generate_csrf})


def followers() -> list[ServiceFollower]:
    """This app's followers, in the order their feeds were declared."""
    return list(current_app.extensions.get(FOLLOWERS_KEY, {}).values())


def json_error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    """A JSON error body {"error": message, …extra} with its status."""
    return jsonify({"error": message, **extra}), status


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


def _poll() -> tuple[int, None] | tuple[None, tuple[int, str]]:
    """A pass over every followed feed: (entries handled, None) or (None, (status, message)).

    A pass already running in this process is waited for, at most POLL_WAIT seconds in all: then 202."""
    processed = 0
    until = time.monotonic() + POLL_WAIT
    for f in followers():
        try:
            f.client.cut_long_polls()  # a long poll held now ends as a 304, so this call does not wait out its wait
            processed += f.poll(wait=max(0.0, until - time.monotonic()))
        except PassRunning:
            return None, (202, f"a pass over {f.title} is still running; ask again later")
        except FollowerHalted as exc:
            return None, (409, f"following {f.title} is halted: {exc}")
        except FeedError:
            return None, (502, problem(f) or f"{f.title} could not be read")
        except SQLAlchemyError as exc:
            return None, (503, f"the database is not available: {type(exc).__name__}: {exc}")
    return processed, None


@bp.post("/poll")
def poll() -> ResponseReturnValue:
    """Poll the feeds now and answer when done."""
    processed, error = _poll()
    if error is not None:
        return json_error(*error, detail=_detail())
    first = current_app.extensions[FOLLOWER_KEY]
    return jsonify({"processed": processed, "position": first.stats()["position"], "last_error": first.last_error,
                    "caught_up": all(f.caught_up is not False for f in followers())})


@bp.post("/poll-now")
def poll_now() -> BaseResponse:
    """The "Poll now" button: poll, say what happened, back to the page it came from."""
    processed, error = _poll()
    if error is not None:
        flash(f"Poll failed. {error[1]}", "error")
    else:
        titles = " and ".join(f.title for f in followers())
        flash(f"Polled {titles}: {_entries(processed or 0)} handled.", "success")
    return redirect(_back())


def _entries(count: int) -> str:
    return "no new entry" if count == 0 else "1 new entry" if count == 1 else f"{count} new entries"


def _detail() -> str | None:
    """The technical text of the first failing follower (for the JSON error's "detail")."""
    return next((f.last_error for f in followers() if f.failing_since is not None), None)


@bp.get("/api/dead-letters")
def dead_letters_api() -> Response:
    """Every followed feed's dead letters, as JSON."""
    return jsonify([letter for f in followers() for letter in f.dead_letters()])


def _retry(letter_id: int) -> None:
    """Retry a dead letter with the follower it belongs to; LookupError when no follower has it."""
    for f in followers():
        if f.dead.owns(letter_id):
            return f.retry_dead_letter(letter_id)
    raise LookupError(f"no dead letter {letter_id}")


@bp.post("/api/dead-letters/<id:letter_id>/retry")
def retry_api(letter_id: int) -> ResponseReturnValue:
    """Retry one dead letter: 200 when handled now, 404 when unknown, 422 when it failed again."""
    try:
        _retry(letter_id)
    except LookupError as exc:
        return json_error(404, str(exc))
    except Exception as exc:
        return json_error(422, f"the retry failed again: {type(exc).__name__}: {exc}", id=letter_id)
    return jsonify({"retried": letter_id, "status": "handled"})


@bp.get("/dead-letters")
def dead_letters_page() -> str:
    """The dead letters of every followed feed, with a retry button each."""
    return render_template("atomshop/dead_letters.html",
                           letters=[letter for f in followers() for letter in f.dead_letters()])


@bp.post("/dead-letters/<id:letter_id>/retry")
def retry_page(letter_id: int) -> BaseResponse:
    """The retry button: retry, say what happened, back to the dead letters."""
    try:
        _retry(letter_id)
    except LookupError as exc:
        flash(str(exc), "error")
    except Exception as exc:
        flash(f"Dead letter {letter_id} failed again: {type(exc).__name__}: {exc}", "error")
    else:
        flash(f"Dead letter {letter_id} handled and removed.", "success")
    return redirect(url_for("consumer.dead_letters_page"))


def _back() -> str:
    """Only ever back to a page of this service: a Referer under this service's URL, else its home page."""
    return same_origin_path(request.referrer, request.script_root + "/")


def _json_errors_for_programs(exc: HTTPException) -> ResponseReturnValue:
    """JSON errors for /api/… and /poll (programs); HTML for pages."""
    if request.path.startswith("/api/") or request.path in ("/poll", "/health"):
        return json_error(exc.code or 500, exc.description or exc.name)
    return exc

"""The feeds a service follows: one follower and poller per feed, and `POST /poll` (status, dead letters: beside)."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, flash, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from common.feeds import BatchHandler, FeedClient, FeedError, Handler, Poller, TrackingModels, UnitOfWork
from common.feeds.follow.errors import FollowerHalted, PassRunning
from common.feeds.follow.origin import origin_of
from common.service.cli import BACKGROUND_KEY
from common.service.config import ConfigError, env_float
from common.service.consumer import FOLLOWER_KEY, FOLLOWERS_KEY, ServiceFollower, bp, followers, json_error
from common.service.dead_letter_routes import retry_api
from common.service.errors import for_programs, with_its_headers
from common.service.follower_status import consumer_status, follower_status, halted_reason, problem
from common.service.security import same_origin_path

log = logging.getLogger(__name__)
CUT_EVERY = 0.1  # seconds between two cuts of a held long poll while POST /poll waits for its pass
POLL_WAIT = 30.0  # seconds POST /poll waits for a pass already running (CONTRACT.md), then answers 202
__all__ = ["FOLLOWERS_KEY", "FOLLOWER_KEY", "POLL_WAIT", "Follow", "ServiceFollower", "consumer_status",
           "follow_config", "follower_status", "followers", "halted_reason", "init_app", "json_error", "problem"]


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


def follow_config(follows: tuple[Follow, ...]) -> dict[str, Any]:
    """Each feed's URL (its variable, else its default), POLL_INTERVAL (seconds, 0 = no background reads) and
    LONG_POLL_WAIT (seconds a long poll asks the feed to hold it, 0 = scheduled polls only)."""
    config = {f.url_variable: os.environ.get(f.url_variable) or f.default_url for f in follows}
    for variable, url in config.items():
        if origin_of(url) is None:
            raise ConfigError(f"{variable} must be an http or https URL, got {url!r}")
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


def _poll() -> tuple[int, None] | tuple[None, tuple[int, str, str | None]]:
    """A pass over every followed feed: (entries handled, None) or (None, (status, sentence, technical text)).

    A pass already running in this process is waited for, at most POLL_WAIT seconds in all: then 202."""
    processed = 0
    until = time.monotonic() + POLL_WAIT
    for f in followers():
        try:
            processed += _poll_cutting_long_polls(f, until)
        except PassRunning:
            return None, (202, f"a pass over {f.title} is still running; ask again later", None)
        except FollowerHalted as exc:
            return None, (409, f"following {f.title} is halted: {exc}", f.last_error)
        except FeedError:
            return None, (502, problem(f) or f"{f.title} could not be read", f.last_error)
        except SQLAlchemyError as exc:
            return None, (503, "this service's database is not available; ask again once it is back",
                          f"{type(exc).__name__}: {exc}")
    return processed, None


def _poll_cutting_long_polls(f: ServiceFollower, until: float) -> int:
    """`f.poll`, waiting for a pass in progress until `until`, meanwhile cutting any long poll it holds.

    A held long poll ends as a 304 when cut, so this call does not wait out its wait; that pass read nothing, so this
    call then runs a pass of its own (passgate.py). The cut is made again every CUT_EVERY seconds while it waits:
    the pass in progress may start holding only after the first cut."""
    while True:
        f.client.cut_long_polls()
        try:
            return f.poll(wait=max(0.0, min(CUT_EVERY, until - time.monotonic())))
        except PassRunning:
            if time.monotonic() >= until:
                raise


@bp.post("/poll")
def poll() -> ResponseReturnValue:
    """Poll the feeds now and answer when done."""
    processed, error = _poll()
    if error is not None:
        status, sentence, technical = error
        return json_error(status, sentence, detail=technical or _detail())
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


def _back() -> str:
    """Only ever back to a page of this service: a Referer under this service's URL, else its home page."""
    return same_origin_path(request.referrer, request.script_root + "/")


def _json_errors_for_programs(exc: HTTPException) -> ResponseReturnValue:
    """JSON errors for programs (for_programs); HTML for pages."""
    if for_programs(request.path):
        response, status = json_error(exc.code or 500, exc.description or exc.name)
        return with_its_headers(response, exc), status
    return exc

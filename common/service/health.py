"""`GET /health`: 200 when the service can do its job, 503 with the problems when it cannot.

Each part of a service contributes a check: a function returning what it shows (merged into the answer) and
the problems it has (strings that say what is wrong). The database answers `SELECT 1` within a couple of seconds
or is a problem; a publisher adds its feed's newest position; a follower adds its status per feed followed
(position, last poll, lag) and is a problem once it has halted. A feed that cannot be read is not one: the
follower retries it, and says so in `last_error`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from common.feeds.publish.publisher import PUBLISHER_KEY
from common.service.db import get_db
from common.service.following import FOLLOWERS_KEY, consumer_status

CHECKS_KEY = "atomshop.health_checks"
PING_TIMEOUT = 2.0

Check = Callable[[], tuple[dict[str, Any], list[str]]]  # (what to show, problems)

bp = Blueprint("health", __name__)


def init_app(app: Flask) -> None:
    """The checks of the parts this app has (database, publisher, followers), and the /health route."""
    checks = app.extensions.setdefault(CHECKS_KEY, [])
    checks.append(_database)
    if PUBLISHER_KEY in app.extensions:
        checks.append(_publisher)
    if app.extensions.get(FOLLOWERS_KEY):
        checks.append(_followers)
    app.register_blueprint(bp)


def add_check(app: Flask, check: Check) -> None:
    """Let another part of the service say what is wrong with it in /health."""
    app.extensions.setdefault(CHECKS_KEY, []).append(check)


@bp.get("/health")
def health() -> ResponseReturnValue:
    """200 {"status": "ok", …}, or 503 {"status": "unavailable", "problems": […], …}."""
    answer: dict[str, Any] = {"status": "ok", "service": current_app.config["SERVICE_NAME"]}
    problems: list[str] = []
    database_up = True
    for check in current_app.extensions.get(CHECKS_KEY, []):
        if check is not _database and not database_up:
            continue  # every other part reads the database: its error is already the problem
        shown, found = check()
        answer.update(shown)
        problems += found
        if check is _database and found:
            database_up = False
    if problems:
        halted = any(feed.get("state") == "halted" for feed in answer.get("feeds", {}).values())
        answer.update(status="halted" if halted and database_up else "unavailable", problems=problems)
        return jsonify(answer), 503
    return jsonify(answer)


def _database() -> tuple[dict[str, Any], list[str]]:
    error = get_db().ping(PING_TIMEOUT)
    if error:
        return {"database": "unreachable"}, [f"database: {error}"]
    return {"database": "ok"}, []


def _publisher() -> tuple[dict[str, Any], list[str]]:
    publisher = current_app.extensions[PUBLISHER_KEY]
    try:
        with publisher.db.read() as session:
            newest = publisher.log.last(session)
    except SQLAlchemyError as exc:
        return {"feed_position": None}, [f"feed: {type(exc).__name__}: {exc}"]
    return {"feed_position": newest[0] if newest else 0}, []


def _followers() -> tuple[dict[str, Any], list[str]]:
    status = consumer_status()
    status.pop("status", None)
    status.pop("service", None)
    # One dead-letter key: "dead_letters", the number waiting now (the tracking record's running total,
    # "dead_lettered", stays in the tracking record, not here).
    status["dead_letters"] = len(status.get("dead_letters", ()))
    status.pop("dead_lettered", None)
    for feed in status.get("feeds", {}).values():
        feed.pop("dead_lettered", None)
    problems = [f"follower {name} ({s['feed_url']}): halted: {s.get('reason') or ''}"
                for name, s in status["feeds"].items() if s.get("state") == "halted"]
    return status, problems

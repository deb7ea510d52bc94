"""What every feed consumer service shares: config, follower and poller set-up, /poll, /health, dead letters."""
from __future__ import annotations

import logging
import os

from flask import Blueprint, Flask, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFProtect, generate_csrf
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from common.service.cli import BACKGROUND_KEY
from common.service.config import base_config, env_float
from common.service.db import Database
from common.feeds.follow.client import FeedError
from common.feeds.follow.follower import BatchHandler, FeedFollower, Handler
from common.contracts.orders import order_page_url
from common.feeds.follow.poller import Poller
from common.feeds.follow.tracking import TrackingModels, rfc3339

log = logging.getLogger(__name__)
FOLLOWER_KEY = "atomshop.follower"
DEFAULT_FEED_URL = "http://127.0.0.1:8081/feed"

bp = Blueprint("consumer", __name__, template_folder="templates")


def consumer_config(service: str) -> dict:
    """base_config plus the consumer's ORDER_FEED_URL and POLL_INTERVAL (seconds, 0 = no scheduled polls)."""
    return {**base_config(service), "ORDER_FEED_URL": os.environ.get("ORDER_FEED_URL") or DEFAULT_FEED_URL,
            "POLL_INTERVAL": env_float("POLL_INTERVAL", 5.0)}


def init_consumer(app: Flask, db: Database, models: TrackingModels, handler: Handler, event_types,
                  batch_handler: BatchHandler | None = None) -> FeedFollower:
    """Give the app a follower of ORDER_FEED_URL, its scheduled poller (started by common.service.cli.serve) and routes."""
    follower = FeedFollower(app.config["ORDER_FEED_URL"], app.config["SERVICE_NAME"], db, handler, models,
                            event_types=event_types, batch_handler=batch_handler)
    poller = Poller(follower, app.config["POLL_INTERVAL"])
    app.extensions[FOLLOWER_KEY] = follower
    app.extensions["atomshop.poller"] = poller
    app.extensions.setdefault(BACKGROUND_KEY, []).append(poller)
    csrf = CSRFProtect(app)
    app.register_blueprint(bp)
    for view in (poll, retry_api):  # JSON for programs: no browser form to forge
        csrf.exempt(view)
    app.register_error_handler(HTTPException, _json_errors_for_programs)
    app.add_template_filter(order_page_url, "order_page")
    app.context_processor(lambda: {"consumer_status": consumer_status, "csrf_token_value": generate_csrf})
    return follower


def follower() -> FeedFollower:
    return current_app.extensions[FOLLOWER_KEY]


def json_error(status: int, message: str, **extra):
    return jsonify({"error": message, **extra}), status


def consumer_status() -> dict:
    """Everything /health and the status panel show about the follower."""
    f = follower()
    status = {"status": "ok", "service": current_app.config["SERVICE_NAME"], "consumer": f.name,
              "feed_url": f.feed_url, "last_poll": rfc3339(f.last_poll), "last_error": f.last_error,
              "poll_interval": current_app.config["POLL_INTERVAL"], "polls": f.polls, "failed_polls": f.failures,
              "poller": current_app.extensions["atomshop.poller"].status()}
    try:
        status.update(f.stats())
        status["dead_letters"] = f.dead_letters()
    except SQLAlchemyError as exc:  # stay up and say so
        status.update(position=None, database_error=f"{type(exc).__name__}: {exc}")
    return status


def _poll():
    try:
        processed = follower().poll()
    except FeedError as exc:
        return None, (502, f"the order feed could not be read: {exc}")
    except SQLAlchemyError as exc:
        return None, (503, f"the database is not available: {type(exc).__name__}: {exc}")
    return processed, None


@bp.post("/poll")
def poll():
    """Poll the feed now and answer when done."""
    processed, error = _poll()
    if error:
        return json_error(*error)
    f = follower()
    return jsonify({"processed": processed, "position": f.stats()["position"], "last_error": f.last_error})


@bp.get("/health")
def health():
    status = consumer_status()
    status["dead_letters"] = len(status.get("dead_letters", ()))
    return jsonify(status)


@bp.post("/poll-now")
def poll_now():
    """The "Poll now" button: poll, say what happened, back to the page it came from."""
    processed, error = _poll()
    if error:
        flash(f"Poll failed: {error[1]}", "error")
    else:
        flash(f"Polled the order feed: {processed} new order(s) handled.", "success")
    return redirect(_back())


@bp.get("/api/dead-letters")
def dead_letters_api():
    return jsonify(follower().dead_letters())


@bp.post("/api/dead-letters/<id:letter_id>/retry")
def retry_api(letter_id: int):
    try:
        follower().retry_dead_letter(letter_id)
    except LookupError as exc:
        return json_error(404, str(exc))
    except Exception as exc:
        return json_error(422, f"the retry failed again: {type(exc).__name__}: {exc}", id=letter_id)
    return jsonify({"retried": letter_id, "status": "handled"})


@bp.get("/dead-letters")
def dead_letters_page():
    return render_template("atomshop/dead_letters.html", letters=follower().dead_letters())


@bp.post("/dead-letters/<id:letter_id>/retry")
def retry_page(letter_id: int):
    try:
        follower().retry_dead_letter(letter_id)
    except LookupError as exc:
        flash(str(exc), "error")
    except Exception as exc:
        flash(f"Dead letter {letter_id} failed again: {type(exc).__name__}: {exc}", "error")
    else:
        flash(f"Dead letter {letter_id} handled and removed.", "success")
    return redirect(url_for("consumer.dead_letters_page"))


def _back() -> str:
    """Only ever back to a page of this service: a Referer under this service's URL, else its home page."""
    ref = request.referrer or ""
    home = request.root_url  # scheme, host and proxy prefix, ending with "/"
    return request.script_root + "/" + (ref[len(home):] if ref.startswith(home) else "")


def _json_errors_for_programs(exc: HTTPException):
    """JSON errors for /api/… and /poll (programs); HTML for pages."""
    if request.path.startswith("/api/") or request.path in ("/poll", "/health"):
        return json_error(exc.code or 500, exc.description or exc.name)
    return exc

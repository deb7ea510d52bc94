"""`GET /health`: what the service's publisher and followers say about themselves."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify

from common.feeds.publish.publisher import PUBLISHER_KEY
from common.service.following import FOLLOWERS_KEY, consumer_status

bp = Blueprint("health", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/health")
def health():
    """200 with the service's state: its feed's newest position, and each followed feed's position; 503 with the
    problems when it cannot do its job (a follower halted). Never waits for a follower's pass."""
    status = {"status": "ok", "service": current_app.config["SERVICE_NAME"]}
    publisher = current_app.extensions.get(PUBLISHER_KEY)
    if publisher is not None:
        with publisher.db.read() as session:
            newest = publisher.log.last(session)
        status["feed_position"] = newest[0] if newest else 0
    problems = []
    if current_app.extensions.get(FOLLOWERS_KEY):
        status.update(consumer_status())
        status["dead_letters"] = len(status.get("dead_letters", ()))
        problems += [f"following {feed['feed_url']} is halted: {feed['reason']}"
                     for feed in status["feeds"].values() if feed.get("state") == "halted"]
    if problems:
        status.update(status="halted", problems=problems)
        return jsonify(status), 503
    return jsonify(status)

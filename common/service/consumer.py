"""The consumer blueprint and the followers it serves: ServiceFollower, where the app keeps them, json_error."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from common.feeds import FeedFollower, Poller

FOLLOWERS_KEY = "atomshop.followers"
FOLLOWER_KEY = "atomshop.follower"  # the first feed followed, which the status panel shows

bp = Blueprint("consumer", __name__, template_folder="templates")


class ServiceFollower(FeedFollower):
    """A follower as a service runs it: a title for people, and the poller that reads its feed on a schedule."""

    title: str
    poller: Poller


def followers() -> list[ServiceFollower]:
    """This app's followers, in the order their feeds were declared."""
    return list(current_app.extensions.get(FOLLOWERS_KEY, {}).values())


def json_error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    """A JSON error body {"error": message, …extra} with its status."""
    return jsonify({"error": message, **extra}), status

"""How a service answers errors: JSON to programs, a page to people; an HTTP error keeps its own headers; a
database that cannot be reached is a 503 to retry, not an unexpected 500."""
from __future__ import annotations

import logging

from flask import Response, current_app, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

log = logging.getLogger(__name__)

DATABASE_AWAY = "this service's database is not available; try again shortly"


def for_programs(path: str) -> bool:
    """Whether `path` is read by programs (/api/…, /poll, /health, the feed), whose errors are JSON; pages get
    HTML."""
    return (path == "/api" or path.startswith(("/api/", "/feed/pages/"))
            or path in ("/poll", "/health", "/feed"))


def with_its_headers(response: Response, exc: HTTPException) -> Response:
    """`response` carrying the headers `exc` answers with (e.g. Allow, which a 405 must carry), not its type."""
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def database_unavailable(exc: OperationalError) -> ResponseReturnValue:
    """A database that cannot be reached (or stays locked) is a 503 the client may retry, answered as the app
    answers any HTTP error (JSON for programs), not an unexpected 500."""
    log.warning("%s %s: the database is not available: %s", request.method, request.path, exc.orig or exc)
    return current_app.handle_http_exception(ServiceUnavailable(DATABASE_AWAY, retry_after=5))

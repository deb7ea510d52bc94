"""Error responses: JSON under /api, a plain page elsewhere — never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from common.service.errors import for_programs, with_its_headers
from order_service import views

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return for_programs(request.path)


def init_app(app: Flask) -> None:
    """Register the handlers for every HTTP error and for unexpected exceptions."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _wants_json():
            response = jsonify({"error": exc.description or exc.name})
        else:
            response = app.make_response(render_template("errors/error.html", error=exc))
        response.status_code = exc.code or 500
        return with_its_headers(response, exc)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        if request.endpoint == "views.create_order":  # keep what was typed into the order form
            return views.form_again_after_csrf_error()
        return _http_error(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _http_error(InternalServerError("the server hit an unexpected error; it has been logged"))

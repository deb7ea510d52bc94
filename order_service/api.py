"""The JSON API: customers, items, orders."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, url_for
from sqlalchemy import select

from common.service.db import get_db
from common.service.security import accepts_feed_token
from common.service.web import link_header, paginate
from order_service.documents import customer_document, item_document, order_document
from order_service.models import Customer, Item, Order
from order_service.orders import InvalidOrder, log_placed, parse_order_json, place_order
from order_service.status import AlreadyDispatched, cancel, status_document, status_of

bp = Blueprint("api", __name__, url_prefix="/api")


def error(status: int, message: str, details: dict[str, str] | None = None) -> tuple[Response, int]:
    """A JSON error response: {"error": …, "details": {field: problem}}."""
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return jsonify(body), status


@bp.get("/customers")
def customers():
    with get_db().read() as session:
        return jsonify([customer_document(c) for c in session.scalars(select(Customer).order_by(Customer.id))])


@bp.get("/items")
def items():
    with get_db().read() as session:
        return jsonify([item_document(i) for i in session.scalars(select(Item).order_by(Item.id))])


@bp.get("/orders")
def orders():
    """The orders, newest first, PER_PAGE a page (?page=n); Link headers name the first, last, prev and next."""
    with get_db().read() as session:
        page = paginate(session, select(Order).order_by(Order.id.desc()), current_app.config.get("API_PER_PAGE", 50))
        response = jsonify([order_document(o) for o in page.items])
    response.headers["Link"] = link_header(page)
    return response


@bp.get("/orders/<id:order_id>")
@accepts_feed_token  # the order feed's entries link here
def order(order_id: int):
    with get_db().read() as session:
        found = session.get(Order, order_id)
        if found is None:
            abort(404, f"no order with id {order_id}")
        return jsonify(order_document(found))


@bp.post("/orders")
def create_order():
    if not request.is_json:
        return error(415, "the body must be JSON, sent with Content-Type: application/json")
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH this raises 413
    try:
        data = json.loads(raw)
        order_request = parse_order_json(data)
    except RecursionError:
        return error(400, "the JSON body is nested too deeply")
    except InvalidOrder as exc:
        return error(422, "the order is not valid", exc.errors)
    except ValueError as exc:  # includes UnicodeDecodeError
        return error(400, f"the body is not valid JSON: {exc}")
    try:
        document = place_order(order_request)
    except InvalidOrder as exc:
        return error(422, "the order is not valid", exc.errors)
    log_placed(document["id"])
    response = jsonify(document)
    response.status_code = 201
    response.headers["Location"] = url_for("api.order", order_id=document["id"])
    return response


@bp.get("/orders/<id:order_id>/status")
def order_status(order_id: int):
    """What the order service has heard from invoicing and shipping (never by asking them)."""
    with get_db().read() as session:
        try:
            return jsonify(status_document(status_of(session, order_id)))
        except LookupError as exc:
            abort(404, str(exc))


@bp.post("/orders/<id:order_id>/cancel")
def cancel_order(order_id: int):
    """202 with the status: an OrderCancelled entry the first time; 409 when known dispatched; 404 unknown."""
    try:
        with get_db().write() as session:
            response = jsonify(status_document(cancel(session, order_id)[0]))
    except LookupError as exc:
        return error(404, str(exc))
    except AlreadyDispatched as exc:
        return error(409, str(exc))
    response.status_code = 202
    return response

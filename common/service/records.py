"""Read-only routes over the records a consumer keeps per order (invoices, shipments): HTML and JSON."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from common.contracts.orders import order_page_url
from common.service.db import get_db
from common.service.following import consumer_status, json_error
from common.service.security import accepts_feed_token
from common.service.web import paginate


def record_routes(plural: str, model: type[Any], list_template: str, detail_template: str) -> Blueprint:
    """`/` and `/<plural>/<order_id>` (HTML), `/api/<plural>` by order_id ascending and `/api/<plural>/<order_id>`."""
    bp = Blueprint(plural, __name__)
    bp.add_app_template_filter(order_page_url, "order_page")  # links back to the order's page

    @bp.get("/")
    def index() -> str:
        with get_db().read() as session:
            page = paginate(session, select(model).order_by(model.order_id.desc()))
            return render_template(list_template, page=page, status=consumer_status())

    @bp.get(f"/{plural}/<id:order_id>")
    def detail(order_id: int) -> str:
        with get_db().read() as session:
            record = session.get(model, order_id)
            if record is None:
                abort(404, description=f"no {plural[:-1]} for order {order_id} (yet)")
            return render_template(detail_template, record=record)

    @bp.get(f"/api/{plural}")
    def api_list() -> Response:
        with get_db().read() as session:
            return jsonify([r.to_json() for r in session.scalars(select(model).order_by(model.order_id))])

    @bp.get(f"/api/{plural}/<id:order_id>")
    @accepts_feed_token  # the service's feed entries link here
    def api_one(order_id: int) -> ResponseReturnValue:
        with get_db().read() as session:
            record = session.get(model, order_id)
            if record is None:
                return json_error(404, f"no {plural[:-1]} for order {order_id}")
            return jsonify(record.to_json())

    return bp

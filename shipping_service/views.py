"""Shipping's pages and JSON API: the shipments, one per order, and dispatching one."""
from __future__ import annotations

from flask import Flask, flash, jsonify, redirect, url_for

from common.service.db import Database, get_db
from common.service.following import json_error
from common.service.records import record_routes
from shipping_service.handlers import NotDispatchable, dispatch
from shipping_service.models import Shipment

bp = record_routes("shipments", Shipment, "shipping/list.html", "shipping/detail.html")


@bp.post("/api/shipments/<id:order_id>/dispatch")
def api_dispatch(order_id: int):
    """200 with the shipment, now dispatched (again: no second entry); 409 when cancelled; 404 when unknown."""
    try:
        with get_db().write() as session:
            return jsonify(dispatch(session, order_id).to_json())
    except LookupError as exc:
        return json_error(404, str(exc))
    except NotDispatchable as exc:
        return json_error(409, str(exc))


@bp.post("/shipments/<id:order_id>/dispatch")
def page_dispatch(order_id: int):
    """The "Dispatch" button: dispatch, say what happened, back to the shipment's page."""
    try:
        with get_db().write() as session:
            dispatch(session, order_id)
        flash(f"Shipment for order {order_id} dispatched.", "success")
    except LookupError as exc:
        flash(str(exc), "error")
        return redirect(url_for("shipments.index"), 303)
    except NotDispatchable as exc:
        flash(str(exc), "error")
    return redirect(url_for("shipments.detail", order_id=order_id), 303)


def init_app(app: Flask, _db: Database) -> None:
    app.extensions["csrf"].exempt(api_dispatch)  # JSON for programs: no browser form to forge

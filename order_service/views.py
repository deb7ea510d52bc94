"""The HTML pages: order list, order form, one order."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from common.db import get_db
from common.publisher import PUBLISHER_KEY
from order_service.forms import OrderForm
from order_service.models import Customer, Item, Order
from order_service.orders import ADDRESS_PARTS, InvalidOrder, OrderRequest, place_order

bp = Blueprint("views", __name__)

LIST_LIMIT = 50


@bp.get("/")
def index():
    before = request.args.get("before", type=int)
    with get_db().read() as session:
        query = select(Order).order_by(Order.id.desc()).limit(LIST_LIMIT + 1)
        if before is not None:
            query = query.where(Order.id < before)
        orders = list(session.scalars(query))
    older = orders[LIST_LIMIT - 1].id if len(orders) > LIST_LIMIT else None
    return render_template("orders/index.html", orders=orders[:LIST_LIMIT], older=older)


@bp.get("/orders/new")
def new_order():
    form = OrderForm()
    return _render_form(form)


@bp.post("/orders")
def create_order():
    form = OrderForm()
    with get_db().read() as session:
        form.set_choices(session.scalars(select(Customer).order_by(Customer.id)),
                         list(session.scalars(select(Item).order_by(Item.id))))
    if form.add_line.data:
        # "Add line" re-displays the form with one more line, keeping what was entered (no JavaScript needed).
        form.lines.append_entry()
        return _render_form(form)
    if form.validate():
        order_request = OrderRequest(
            customer_id=form.customer_id.data,
            shipping={part: form[f"shipping_{part}"].data for part in ADDRESS_PARTS},
            billing={part: form[f"billing_{part}"].data for part in ADDRESS_PARTS},
            lines=[(line.form.item_id.data, line.form.quantity.data) for line in form.lines])
        try:
            with get_db().write() as session:
                order = place_order(session, current_app.extensions[PUBLISHER_KEY], order_request)
            return redirect(url_for("views.order", order_id=order.id), 303)
        except InvalidOrder as exc:
            form.form_errors.extend(exc.errors.values())
    return _render_form(form, 422)


@bp.get("/orders/<int:order_id>")
def order(order_id: int):
    with get_db().read() as session:
        found = session.get(Order, order_id)
        if found is None:
            abort(404, f"There is no order {order_id}.")
        return render_template("orders/detail.html", order=found)


def _render_form(form: OrderForm, status: int = 200):
    with get_db().read() as session:
        form.set_choices(session.scalars(select(Customer).order_by(Customer.id)),
                         list(session.scalars(select(Item).order_by(Item.id))))
    return render_template("orders/new.html", form=form), status

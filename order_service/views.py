"""The HTML pages: order list, order form, one order, and the order feed rendered for people."""
from __future__ import annotations

import json
from decimal import Decimal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from common.contracts.orders import QUANTITY_MAX, QUANTITY_MIN
from common.feeds.publish.pages import Page, current_page
from common.feeds.publish.publisher import PUBLISHER_KEY
from common.service import web
from common.service.config import ConfigError, env_float
from common.service.db import get_db
from order_service.forms import OrderForm, is_line_number, odd_line_fields, without_line
from order_service.models import Customer, Item, Order
from order_service.orders import ADDRESS_PARTS, InvalidOrder, OrderRequest, log_placed, place_order
from order_service.status import AlreadyDispatched, cancel, cancellation_state, status_of, timeline

bp = Blueprint("views", __name__)

DEFAULT_POLL_INTERVAL = 5.0  # the consumers' default (CONTRACT.md)


@bp.get("/")
def index():
    with get_db().read() as session:
        page = web.paginate(session, select(Order).order_by(Order.id.desc()))
        return render_template("orders/index.html", page=page)


@bp.get("/orders/new")
def new_order():
    return _render_form(OrderForm(same_as_shipping=True))


@bp.post("/orders")
def create_order():
    odd = odd_line_fields(request.form)
    if odd:
        abort(400, description=f"not fields of this form: {', '.join(odd)} (a line is lines-<0-9999>-<field>)")
    remove = request.form.get("remove_line", "")
    if remove and not is_line_number(remove):
        abort(400, description=f"remove_line must be a line number (0-9999), got {remove[:40]!r}")
    if remove:
        # "Remove line" without JavaScript: the form again without that line, nothing stored.
        return _render_form(OrderForm(formdata=without_line(request.form, int(remove))))
    form = OrderForm()
    if form.add_line.data:
        # "Add line" re-displays the form with one more line, keeping what was entered (no JavaScript needed).
        form.lines.append_entry()
        return _render_form(form)
    with get_db().read() as session:
        form.set_choices(*_catalogue(session))
    same = form.same_as_shipping.data
    if same:
        form.copy_shipping_to_billing()
    valid = form.validate()
    if same:  # a copied field's error is already shown on the shipping field it came from
        for field in form.billing_fields():
            field.errors = []
    if valid:
        order_request = OrderRequest(
            customer_id=form.customer_id.data,
            shipping={part: form[f"shipping_{part}"].data for part in ADDRESS_PARTS},
            billing={part: form[f"billing_{part}"].data for part in ADDRESS_PARTS},
            lines=[(line.form.item_id.data, line.form.quantity.data) for line in form.lines])
        try:
            placed = place_order(order_request)
            log_placed(placed["id"])
            flash(f"Order {placed['id']} placed.", "success")
            return redirect(url_for("views.order", order_id=placed["id"]), 303)
        except InvalidOrder as exc:
            form.form_errors.extend(exc.errors.values())
    return _render_form(form, 422)


EXPIRED_FORM = ("The form had expired or came without its security token, so nothing was stored. "
                "Your entries are kept below: check them and press Place order again.")


def form_again_after_csrf_error():
    """A form post whose CSRF token is missing or expired: the form again, as typed, saying to submit again."""
    form = OrderForm()  # bound to the posted fields, with a fresh token
    form.form_errors.append(EXPIRED_FORM)
    return _render_form(form, 400)


@bp.get("/orders/<id:order_id>")
def order(order_id: int):
    with get_db().read() as session:
        found = session.get(Order, order_id)
        if found is None:
            abort(404, f"There is no order {order_id}.")
        status = status_of(session, order_id)
        return render_template("orders/detail.html", order=found, poll_interval=consumer_poll_interval(),
                               status=status, steps=timeline(found, status), cancellation=cancellation_state(status))


@bp.post("/orders/<id:order_id>/cancel")
def cancel_order(order_id: int):
    """The "Cancel order" button: ask for the cancellation, say so, back to the order's page."""
    try:
        with get_db().write() as session:
            _, first = cancel(session, order_id)
    except LookupError:
        abort(404, f"There is no order {order_id}.")
    except AlreadyDispatched as exc:
        flash(f"{exc}.", "error")
    else:
        flash("Cancellation requested: invoicing and shipping will answer through their feeds." if first
              else "The cancellation was requested already.", "success")
    return redirect(url_for("views.order", order_id=order_id), 303)


@bp.get("/feed/view")
def feed_view():
    """The order feed as an HTML page for people: one feed page's entries and links to its neighbours."""
    publisher = current_app.extensions[PUBLISHER_KEY]
    asked = web.requested_page() if "page" in request.args else None
    with get_db().read() as session:
        newest = publisher.log.last(session)
        last_position = newest[0] if newest else 0
        current = current_page(last_position, publisher.page_size)
        if asked is not None and asked > current.number:
            abort(404, f"There is no feed page {asked}; the current page is {current.number}.")
        page = Page(asked or current.number, publisher.page_size, last_position)
        entries = [(row, _document(row.document)) for row in publisher.log.between(session, page.first, page.last)]
    atom_url = url_for("feed.page", raw=str(page.number)) if page.is_archive else url_for("feed.current")
    # Pretty-printed for reading, the same JSON a consumer parses (the raw text when it is not a JSON object).
    newest_json = (json.dumps(entries[0][1], indent=2, ensure_ascii=False) if entries and entries[0][1]
                   else entries[0][0].document if entries else "")
    return render_template("orders/feed.html", page=page, entries=entries, atom_url=atom_url,
                           current_number=current.number, newest_json=newest_json)


def consumer_poll_interval() -> float:
    """Seconds between the consumers' polls, for telling people when an order shows up downstream.

    The consumers read POLL_INTERVAL; `atomshop up` gives every service the same environment, so it is read
    here too (CONSUMER_POLL_INTERVAL in the app config wins).
    """
    configured = current_app.config.get("CONSUMER_POLL_INTERVAL")
    if configured is not None:
        return float(configured)
    try:
        return env_float("POLL_INTERVAL", DEFAULT_POLL_INTERVAL)
    except ConfigError:
        return DEFAULT_POLL_INTERVAL


def _catalogue(session) -> tuple[list[Customer], list[Item]]:
    return (list(session.scalars(select(Customer).order_by(Customer.id))),
            list(session.scalars(select(Item).order_by(Item.id))))


def _line_amounts(form: OrderForm, items: list[Item]) -> tuple[list[Decimal | None], Decimal | None]:
    """Each line's amount as the form stands (None where not computable yet), and the total if all are."""
    prices = {item.id: item.price for item in items}
    amounts: list[Decimal | None] = []
    for line in form.lines:
        item_id = line.form.item_id.data if line.form.item_id.data is not None else (items[0].id if items else None)
        price = prices.get(item_id) if isinstance(item_id, int) else None
        quantity = line.form.quantity.data
        in_range = isinstance(quantity, int) and QUANTITY_MIN <= quantity <= QUANTITY_MAX
        amounts.append(price * quantity if price is not None and in_range else None)
    known = [amount for amount in amounts if amount is not None]
    total = sum(known, Decimal("0.00")) if len(known) == len(amounts) else None
    return amounts, total


def _document(text: str) -> dict:
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _render_form(form: OrderForm, status: int = 200):
    with get_db().read() as session:
        customers, items = _catalogue(session)
    form.set_choices(customers, items)
    amounts, total = _line_amounts(form, items)
    return render_template("orders/new.html", form=form, amounts=amounts, total=total), status

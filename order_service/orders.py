"""Placing an order: the checks every channel shares, the write, and the new order's document (documents.py)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from pydantic import ValidationError
from sqlalchemy import bindparam, insert, literal, select
from sqlalchemy.orm import Session

from common.contracts import ORDER_CREATED, messages
from common.contracts import OrderRequest as OrderBody
from common.contracts.fields import NOT_ALLOWED, has_xml_illegal
from common.feeds.publish.clock import utcnow
from common.feeds.publish.publisher import FeedPublisher
from common.service.db import Database
from common.service.group_commit import GroupCommit
from order_service.documents import new_order_document
from order_service.models import Customer, Item, Order, OrderLine, OrderStatus

EVENT_ORDER_CREATED = ORDER_CREATED
INTAKE_KEY = "atomshop.intake"
ADDRESS_PARTS = ("street", "zip", "city")

log = logging.getLogger(__name__)

# Statements built once and run on the session's connection (Core): building one costs about as much as running
# it (SQLAlchemy then finds its compiled form in its cache), and rows are all intake needs, never ORM objects.
# The customer and the items an order names, in one read: a row per item found, the customer's columns on each,
# and one row even when neither is found, so that every missing one is told.
SELECT_NAMED = (select(Customer.id.label("customer_id"), Customer.first_name, Customer.last_name, Customer.email,
                       Item.id.label("item_id"), Item.name, Item.price)
                .select_from(select(literal(1)).subquery("named"))
                .outerjoin(Customer, Customer.id == bindparam("customer_id"))
                .outerjoin(Item, Item.id.in_(bindparam("item_ids", expanding=True))))
# The new order's id as the driver reports it: SQLite's lastrowid (no RETURNING row to fetch with the write lock
# held), PostgreSQL's implicit RETURNING (the same round trip).
INSERT_ORDER = insert(Order)
INSERT_LINES = insert(OrderLine)
INSERT_STATUS = insert(OrderStatus)


class InvalidOrder(ValueError):
    """The order cannot be placed; `errors` maps each offending field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class OrderRequest:
    """A well-formed order that still has to pass the checks against the database."""

    customer_id: int
    shipping: dict[str, str]
    billing: dict[str, str]
    lines: list[tuple[int, int]] = field(default_factory=list)  # (item_id, quantity)


def find_xml_illegal(value: Any, where: str = "body") -> str | None:
    """The path of the first string (key or value) in a JSON value that XML 1.0 cannot carry, else None."""
    if isinstance(value, str):
        return where if has_xml_illegal(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if has_xml_illegal(key):
                return f"{where} (a key)"
            found = find_xml_illegal(item, f"{where}.{key}" if where != "body" else key)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_xml_illegal(item, f"{where}[{index}]")
            if found:
                return found
    return None


def parse_order_json(data: Any) -> OrderRequest:
    """Check a JSON order body against the published OrderRequest model; InvalidOrder lists every problem."""
    if not isinstance(data, dict):
        raise InvalidOrder({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    illegal = find_xml_illegal(data)  # anywhere, even in fields the model ignores
    if illegal:
        errors[illegal] = NOT_ALLOWED
    try:
        body = OrderBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidOrder({**errors, **messages(exc)}) from None
    if errors:
        raise InvalidOrder(errors)
    return OrderRequest(body.customer_id, body.shipping_address.model_dump(), body.billing_address.model_dump(),
                        [(line.item_id, line.quantity) for line in body.lines])


class Intake:
    """Places orders: each checked, then stored with its OrderCreated notification in one unit of work.

    Everything that needs no lock comes before it: the checks against the database (customers and items are only
    ever added) and the document itself. SQLite's write transaction holds the database's write lock from its
    BEGIN, so there the checks run in a read transaction of their own, beside other threads' writes; PostgreSQL's
    only lock is the feed's, taken at the append, so there the write's transaction does them (no second one).
    Orders placed at the same moment in this process share the write (group commit: one turn of the lock, one
    COMMIT for all of them, common/service/group_commit.py), their notifications appended last.
    """

    def __init__(self, db: Database, publisher: FeedPublisher) -> None:
        self.db = db
        self.publisher = publisher
        self._writes: GroupCommit[OrderRequest | _NewOrder, dict | InvalidOrder] = GroupCommit(db, self._store)

    def place(self, request: OrderRequest) -> dict:
        """Store the order; returns its document once committed, or raises InvalidOrder saying what is wrong."""
        order: OrderRequest | _NewOrder = request
        if self.db.is_sqlite:
            with self.db.read() as session:
                order = _prepare(session, request)
        placed = self._writes.write(order)
        if isinstance(placed, InvalidOrder):
            raise placed
        return placed

    def _store(self, session: Session, orders: Sequence[OrderRequest | _NewOrder]) -> list[dict | InvalidOrder]:
        """INSERT the orders, then all their lines and statuses, then append their OrderCreated entries (the
        feed's lock last); each order's document with its id, or why it is invalid (nothing stored for it)."""
        placed: list[dict | InvalidOrder] = []
        lines: list[dict[str, Any]] = []
        conn = session.connection()
        for order in orders:
            try:
                new_order = order if isinstance(order, _NewOrder) else _prepare(session, order)
            except InvalidOrder as exc:
                placed.append(exc)
                continue
            key = conn.execute(INSERT_ORDER, new_order.order).inserted_primary_key
            assert key is not None  # a single-row INSERT always reports it
            lines += [{**line, "order_id": key[0]} for line in new_order.lines]
            placed.append({**new_order.document, "id": key[0]})
        documents = [document for document in placed if isinstance(document, dict)]
        if documents:
            conn.execute(INSERT_LINES, lines)
            # Nothing heard yet for any of them; the followers fill it in.
            conn.execute(INSERT_STATUS, [{"order_id": document["id"]} for document in documents])
            self.publisher.append_many(session, [(EVENT_ORDER_CREATED, document) for document in documents])
        return placed


def place_order(request: OrderRequest) -> dict:
    """Place an order through the current app's Intake; its document, or InvalidOrder."""
    intake: Intake = current_app.extensions[INTAKE_KEY]
    return intake.place(request)


@dataclass
class _NewOrder:
    """What the write needs, worked out before it: the rows and the document, all but the order's id."""

    order: dict[str, Any]  # the orders row
    lines: list[dict[str, Any]]  # the order_lines rows
    document: dict  # the order document, its id a stand-in


def _prepare(session: Session, request: OrderRequest) -> _NewOrder:
    """The new order's rows and document, checked against the database; InvalidOrder lists what is wrong."""
    rows = session.connection().execute(SELECT_NAMED, {
        "customer_id": request.customer_id, "item_ids": sorted({item_id for item_id, _ in request.lines})}).all()
    customer = rows[0] if rows[0].customer_id is not None else None
    items = {row.item_id: row for row in rows if row.item_id is not None}
    errors: dict[str, str] = {}
    if customer is None:
        errors["customer_id"] = f"no customer with id {request.customer_id}"
    for index, (item_id, _) in enumerate(request.lines):
        if item_id not in items:
            errors[f"lines[{index}].item_id"] = f"no item with id {item_id}"
    if errors:
        raise InvalidOrder(errors)
    created = utcnow()
    addresses = {f"{kind}_{part}": address[part] for kind, address in
                 (("shipping", request.shipping), ("billing", request.billing)) for part in ADDRESS_PARTS}
    lines = [{"line_no": n, "item_id": item_id, "quantity": quantity, "price": items[item_id].price}
             for n, (item_id, quantity) in enumerate(request.lines, start=1)]
    document = new_order_document(created, customer, request.shipping, request.billing,
                                  [(items[item_id], quantity) for item_id, quantity in request.lines])
    return _NewOrder({"created": created, "customer_id": request.customer_id, **addresses}, lines, document)


def log_placed(order_id: int) -> None:
    """Say an order was placed, once its transaction has committed (its id in structured logs)."""
    log.info("order %d placed", order_id, extra={"order_id": order_id})

"""Placing an order: the checks every channel shares, the write, and the order document."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.feeds.publish.log import utcnow
from common.service.ids import is_id
from common.feeds.publish.publisher import FeedPublisher
from order_service.models import ADDRESS_MAX, Customer, Item, Order, OrderLine

EVENT_ORDER_CREATED = "OrderCreated"
ADDRESS_PARTS = ("street", "zip", "city")
QUANTITY_MIN, QUANTITY_MAX = 1, 9999
CENT = Decimal("0.01")

# Characters XML 1.0 cannot carry (C0 controls but tab, LF, CR; surrogates; U+FFFE, U+FFFF): never stored,
# so they can never break the feed.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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


def has_xml_illegal(text: str) -> bool:
    return _XML_ILLEGAL.search(text) is not None


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


def address_error(value: Any) -> str | None:
    """What is wrong with one address field, or None."""
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return "must not be empty"
    if len(value) > ADDRESS_MAX:
        return f"must be at most {ADDRESS_MAX} characters"
    if has_xml_illegal(value):
        return "contains a character that is not allowed (control character or invalid code point)"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def quantity_error(value: Any) -> str | None:
    if not _is_int(value):
        return "must be an integer"
    if not QUANTITY_MIN <= value <= QUANTITY_MAX:
        return f"must be from {QUANTITY_MIN} to {QUANTITY_MAX}"
    return None


def parse_order_json(data: Any) -> OrderRequest:
    """Check the shape and types of a JSON order body; raise InvalidOrder listing every problem."""
    if not isinstance(data, dict):
        raise InvalidOrder({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    illegal = find_xml_illegal(data)
    if illegal:
        errors[illegal] = "contains a character that is not allowed (control character or invalid code point)"
    if not is_id(data.get("customer_id")):
        errors["customer_id"] = "must be the integer id of a customer"
    addresses = {}
    for kind in ("shipping", "billing"):
        name = f"{kind}_address"
        address = data.get(name)
        if not isinstance(address, dict):
            errors[name] = "must be an object with street, zip and city"
            continue
        for part in ADDRESS_PARTS:
            problem = address_error(address.get(part))
            if problem:
                errors[f"{name}.{part}"] = problem
        addresses[kind] = {part: address.get(part) for part in ADDRESS_PARTS}
    lines = data.get("lines")
    parsed_lines = []
    if not isinstance(lines, list) or not lines:
        errors["lines"] = "must be a non-empty array of {item_id, quantity}"
    else:
        for index, line in enumerate(lines):
            if not isinstance(line, dict):
                errors[f"lines[{index}]"] = "must be an object with item_id and quantity"
                continue
            if not is_id(line.get("item_id")):
                errors[f"lines[{index}].item_id"] = "must be the integer id of an item"
            problem = quantity_error(line.get("quantity"))
            if problem:
                errors[f"lines[{index}].quantity"] = problem
            parsed_lines.append((line.get("item_id"), line.get("quantity")))
    if errors:
        raise InvalidOrder(errors)
    return OrderRequest(data["customer_id"], addresses["shipping"], addresses["billing"], parsed_lines)


def place_order(session: Session, publisher: FeedPublisher, request: OrderRequest) -> Order:
    """Store the order and its OrderCreated notification in the caller's unit of work."""
    errors: dict[str, str] = {}
    customer = session.get(Customer, request.customer_id)
    if customer is None:
        errors["customer_id"] = f"no customer with id {request.customer_id}"
    wanted = {item_id for item_id, _ in request.lines}
    items = {item.id: item for item in session.scalars(select(Item).where(Item.id.in_(wanted)))}
    for index, (item_id, _) in enumerate(request.lines):
        if item_id not in items:
            errors[f"lines[{index}].item_id"] = f"no item with id {item_id}"
    if errors:
        raise InvalidOrder(errors)
    order = Order(created=utcnow(), customer=customer,
                  **{f"{kind}_{part}": address[part] for kind, address in
                     (("shipping", request.shipping), ("billing", request.billing)) for part in ADDRESS_PARTS})
    order.lines = [OrderLine(line_no=n, item=items[item_id], quantity=quantity, price=items[item_id].price)
                   for n, (item_id, quantity) in enumerate(request.lines, start=1)]
    session.add(order)
    session.flush()  # assigns order.id
    publisher.append(session, EVENT_ORDER_CREATED, order_document(order))
    return order


def money(amount: Decimal) -> str:
    """A money amount as a decimal string with two places: "42.00"."""
    return format(Decimal(amount).quantize(CENT), "f")


def rfc3339(moment) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def customer_document(customer: Customer) -> dict:
    return {"id": customer.id, "first_name": customer.first_name, "last_name": customer.last_name,
            "email": customer.email}


def item_document(item: Item, price: Decimal | None = None) -> dict:
    return {"id": item.id, "name": item.name, "price": money(item.price if price is None else price)}


def order_document(order: Order) -> dict:
    """The order document of the contract: what the API returns and the feed's entries carry."""
    return {
        "id": order.id,
        "created": rfc3339(order.created),
        "customer": customer_document(order.customer),
        "shipping_address": order.address("shipping"),
        "billing_address": order.address("billing"),
        "lines": [{"item": item_document(line.item, line.price), "quantity": line.quantity} for line in order.lines],
        "total": money(order.total),
    }

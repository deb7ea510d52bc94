"""The order service's documents as the contract shapes them: what its API returns and its feed carries."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.contracts import OrderDocument
from order_service.models import Customer, Item, Order

CENT = Decimal("0.01")


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
    """The order document of the contract, checked by its published model: what the API returns and the feed carries."""
    return OrderDocument.model_validate({
        "id": order.id,
        "created": rfc3339(order.created),
        "customer": customer_document(order.customer),
        "shipping_address": order.address("shipping"),
        "billing_address": order.address("billing"),
        "lines": [{"item": item_document(line.item, line.price), "quantity": line.quantity} for line in order.lines],
        "total": money(order.total),
    }).model_dump(mode="json")


def new_order_document(created, customer: Any, shipping: dict[str, str], billing: dict[str, str],
                       lines: list[tuple[Any, int]]) -> dict:
    """The order document before the order has an id (checked with a stand-in id of 1), from SELECT_NAMED's rows
    (orders.py)."""
    total = sum((item.price * quantity for item, quantity in lines), Decimal("0.00"))
    document = {
        "id": 1,
        "created": rfc3339(created),
        "customer": {"id": customer.customer_id, "first_name": customer.first_name, "last_name": customer.last_name,
                     "email": customer.email},
        "shipping_address": dict(shipping),
        "billing_address": dict(billing),
        "lines": [{"item": {"id": item.item_id, "name": item.name, "price": money(item.price)}, "quantity": quantity}
                  for item, quantity in lines],
        "total": money(total),
    }
    # Checked by its published model, and kept as built: already in the model's JSON form, field for field.
    OrderDocument.model_validate(document)
    return document

"""Invoicing's reaction to the order feed: an OrderCreated entry becomes an invoice, once."""
from __future__ import annotations

from sqlalchemy.orm import Session

from common.feeds.follow.client import FeedEntry
from common.contracts.orders import ORDER_CREATED, AddressColumns, CustomerColumns, add_once, read_order
from invoicing_service.models import Invoice, InvoiceLine

EVENT_TYPES = frozenset({ORDER_CREATED})


def handle_batch(session: Session, entries: list[FeedEntry]) -> None:
    """Store the invoices of the orders in `entries` (in order) that do not exist yet."""
    invoices, lines = [], []
    for entry in entries:
        order = read_order(entry)
        invoices.append({"order_id": order.id, "total": order.total, "order_url": order.url,
                         "position": entry.position, **CustomerColumns.customer_values(order.customer),
                         **AddressColumns.address_values(order.billing_address)})
        lines += [{"order_id": order.id, "line_no": n, "item_id": line.item_id, "item_name": line.name,
                   "price": line.price, "quantity": line.quantity, "amount": line.price * line.quantity}
                  for n, line in enumerate(order.lines, 1)]
    add_once(session, Invoice, invoices, InvoiceLine, lines)


def handle(session: Session, entry: FeedEntry) -> None:
    """Store the invoice of the order in `entry` unless it already exists."""
    handle_batch(session, [entry])

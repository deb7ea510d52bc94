"""Invoicing's reaction to the order feed: an OrderCreated entry becomes an invoice, once."""
from __future__ import annotations

from sqlalchemy.orm import Session

from common.feedclient import FeedEntry
from common.order_document import ORDER_CREATED, AddressColumns, CustomerColumns, add_once, read_order
from invoicing_service.models import Invoice, InvoiceLine

EVENT_TYPES = frozenset({ORDER_CREATED})


def handle(session: Session, entry: FeedEntry) -> None:
    """Store the invoice of the order in `entry` unless it already exists."""
    order = read_order(entry)

    def build() -> Invoice:
        return Invoice(order_id=order.id, total=order.total, order_url=order.url, position=entry.position,
                       **CustomerColumns.customer_values(order.customer),
                       **AddressColumns.address_values(order.billing_address),
                       lines=[InvoiceLine(line_no=n, item_id=line.item_id, item_name=line.name, price=line.price,
                                          quantity=line.quantity, amount=line.price * line.quantity)
                              for n, line in enumerate(order.lines, 1)])

    add_once(session, Invoice, order.id, build)

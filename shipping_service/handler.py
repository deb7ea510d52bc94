"""Shipping's reaction to the order feed: an OrderCreated entry becomes a shipment, once."""
from __future__ import annotations

from sqlalchemy.orm import Session

from common.feeds.follow.client import FeedEntry
from common.contracts.orders import ORDER_CREATED, AddressColumns, CustomerColumns, add_once, read_order
from shipping_service.models import Shipment, ShipmentLine

EVENT_TYPES = frozenset({ORDER_CREATED})


def handle_batch(session: Session, entries: list[FeedEntry]) -> None:
    """Store the shipments of the orders in `entries` (in order) that do not exist yet."""
    shipments, lines = [], []
    for entry in entries:
        order = read_order(entry)
        shipments.append({"order_id": order.id, "order_url": order.url, "position": entry.position,
                          **CustomerColumns.customer_values(order.customer),
                          **AddressColumns.address_values(order.shipping_address)})
        lines += [{"order_id": order.id, "line_no": n, "item_id": line.item_id, "item_name": line.name,
                   "quantity": line.quantity} for n, line in enumerate(order.lines, 1)]
    add_once(session, Shipment, shipments, ShipmentLine, lines)


def handle(session: Session, entry: FeedEntry) -> None:
    """Store the shipment of the order in `entry` unless it already exists."""
    handle_batch(session, [entry])

"""Shipping's reaction to the order feed: an OrderCreated entry becomes a shipment, once."""
from __future__ import annotations

from sqlalchemy.orm import Session

from common.feedclient import FeedEntry
from common.order_document import ORDER_CREATED, AddressColumns, CustomerColumns, add_once, read_order
from shipping_service.models import Shipment, ShipmentLine

EVENT_TYPES = frozenset({ORDER_CREATED})


def handle(session: Session, entry: FeedEntry) -> None:
    """Store the shipment of the order in `entry` unless it already exists."""
    order = read_order(entry)

    def build() -> Shipment:
        return Shipment(order_id=order.id, order_url=order.url, position=entry.position,
                        **CustomerColumns.customer_values(order.customer),
                        **AddressColumns.address_values(order.shipping_address),
                        lines=[ShipmentLine(line_no=n, item_id=line.item_id, item_name=line.name,
                                            quantity=line.quantity) for n, line in enumerate(order.lines, 1)])

    add_once(session, Shipment, order.id, build)

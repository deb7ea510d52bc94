"""What shipping does with each event of the order feed: an OrderCreated entry becomes a shipment, once."""
from __future__ import annotations

from common.contracts import ORDER_CREATED
from common.service.storage import AddressColumns, OrderRecords
from shipping_service.models import Shipment, ShipmentLine

EVENT_TYPES = frozenset({ORDER_CREATED})

SHIPMENTS = OrderRecords(
    Shipment, ShipmentLine,
    record=lambda order: AddressColumns.address_values(order.shipping_address),
    line=lambda line: {})
handle, handle_batch = SHIPMENTS.handle, SHIPMENTS.handle_batch

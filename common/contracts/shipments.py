"""The shipping feed's published language: the shipment document (ShipmentPrepared) and what happens to it."""
from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field

from common.contracts.base import Contract, Document, Timestamp
from common.contracts.fields import ItemId, OrderId, Url, XmlText, explained
from common.contracts.orders import LINES_MAX, Address, Customer, ItemName, PositiveQuantity

SHIPMENT_PREPARED = "ShipmentPrepared"
SHIPMENT_DISPATCHED = "ShipmentDispatched"
SHIPMENT_CANCELLED = "ShipmentCancelled"
SHIPMENT_CANCELLATION_REFUSED = "ShipmentCancellationRefused"
ShipmentState = Literal["pending", "dispatched", "cancelled"]
SHIPMENT_STATES: tuple[ShipmentState, ...] = get_args(ShipmentState)
Reason = Annotated[str, XmlText(500)]


class ShippedItem(Contract):
    id: ItemId
    name: ItemName


class ShipmentLine(Contract):
    item: ShippedItem
    quantity: PositiveQuantity


class ShipmentDocument(Document):
    """The shipment document: what `GET /api/shipments/<order_id>` returns and a ShipmentPrepared entry carries."""

    model_config = ConfigDict(title=SHIPMENT_PREPARED)
    order_id: OrderId
    state: ShipmentState
    customer: Customer
    shipping_address: Address
    lines: Annotated[list[ShipmentLine], Field(min_length=1, max_length=LINES_MAX),
                     explained(f"must be a non-empty list of at most {LINES_MAX} lines")]
    order_url: Url | None = None


class ShipmentDispatched(Document):
    """The shipment of order `order_id` left the warehouse at `dispatched`."""

    model_config = ConfigDict(title=SHIPMENT_DISPATCHED)
    order_id: OrderId
    dispatched: Timestamp


class ShipmentCancelled(Document):
    """The shipment of order `order_id`, not dispatched yet, was cancelled at `cancelled`."""

    model_config = ConfigDict(title=SHIPMENT_CANCELLED)
    order_id: OrderId
    cancelled: Timestamp


class ShipmentCancellationRefused(Document):
    """A cancellation of order `order_id` came when its shipment was dispatched already (`refused`: when)."""

    model_config = ConfigDict(title=SHIPMENT_CANCELLATION_REFUSED)
    order_id: OrderId
    refused: Timestamp
    reason: Reason

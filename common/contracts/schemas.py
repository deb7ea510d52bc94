"""JSON Schemas (draft 2020-12) of the published documents, by event type."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from common.contracts import invoices, orders, shipments

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Every event type any atomshop feed publishes, with the model of its content.
ORDER_FEED: dict[str, type[BaseModel]] = {orders.ORDER_CREATED: orders.OrderDocument,
                                          orders.ORDER_CANCELLED: orders.OrderCancelled}
INVOICING_FEED: dict[str, type[BaseModel]] = {invoices.INVOICE_ISSUED: invoices.InvoiceDocument,
                                              invoices.INVOICE_CANCELLED: invoices.InvoiceCancelled}
SHIPPING_FEED: dict[str, type[BaseModel]] = {
    shipments.SHIPMENT_PREPARED: shipments.ShipmentDocument,
    shipments.SHIPMENT_DISPATCHED: shipments.ShipmentDispatched,
    shipments.SHIPMENT_CANCELLED: shipments.ShipmentCancelled,
    shipments.SHIPMENT_CANCELLATION_REFUSED: shipments.ShipmentCancellationRefused}
PUBLISHED: dict[str, type[BaseModel]] = {**ORDER_FEED, **INVOICING_FEED, **SHIPPING_FEED}


def json_schema(model: type[BaseModel], event_type: str) -> dict[str, Any]:
    """The model's JSON Schema as served at /schemas/<event_type>.json."""
    return {"$schema": DRAFT, **model.model_json_schema(mode="serialization"), "title": event_type}

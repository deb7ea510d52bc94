"""The published language of each feed: one pydantic model per document, its JSON Schema served at /schemas/."""
from common.contracts.base import Document
from common.contracts.fields import messages
from common.contracts.invoices import INVOICE_CANCELLED, INVOICE_ISSUED, InvoiceCancelled, InvoiceDocument
from common.contracts.orders import ORDER_CANCELLED, ORDER_CREATED, OrderCancelled, OrderDocument, OrderRequest
from common.contracts.schemas import INVOICING_FEED, ORDER_FEED, PUBLISHED, SHIPPING_FEED, json_schema
from common.contracts.shipments import (
                                        SHIPMENT_CANCELLATION_REFUSED,
                                        SHIPMENT_CANCELLED,
                                        SHIPMENT_DISPATCHED,
                                        SHIPMENT_PREPARED,
                                        ShipmentCancellationRefused,
                                        ShipmentCancelled,
                                        ShipmentDispatched,
                                        ShipmentDocument,
)

__all__ = ["Document", "INVOICE_CANCELLED", "INVOICE_ISSUED", "INVOICING_FEED", "InvoiceCancelled",
           "InvoiceDocument", "ORDER_CANCELLED", "ORDER_CREATED", "ORDER_FEED", "OrderCancelled", "OrderDocument",
           "OrderRequest", "PUBLISHED", "SHIPMENT_CANCELLATION_REFUSED", "SHIPMENT_CANCELLED", "SHIPMENT_DISPATCHED",
           "SHIPMENT_PREPARED", "SHIPPING_FEED", "ShipmentCancellationRefused", "ShipmentCancelled",
           "ShipmentDispatched", "ShipmentDocument", "json_schema", "messages"]

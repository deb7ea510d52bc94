"""What invoicing does with each event of the order feed: an OrderCreated entry becomes an invoice, once."""
from __future__ import annotations

from common.contracts import ORDER_CREATED
from common.service.storage import AddressColumns, OrderRecords
from invoicing_service.models import Invoice, InvoiceLine

EVENT_TYPES = frozenset({ORDER_CREATED})

INVOICES = OrderRecords(
    Invoice, InvoiceLine,
    record=lambda order: {"total": order.total, **AddressColumns.address_values(order.billing_address)},
    line=lambda line: {"price": line.item.price, "amount": line.amount})
handle, handle_batch = INVOICES.handle, INVOICES.handle_batch

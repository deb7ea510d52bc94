"""What invoicing does with each event of the order feed, publishing each effect in the same transaction:
OrderCreated → an invoice (InvoiceIssued), once; OrderCancelled → the invoice cancelled (InvoiceCancelled), once."""
from __future__ import annotations

from sqlalchemy.orm import Session

from common.contracts import INVOICE_CANCELLED, INVOICE_ISSUED, OrderCancelled
from common.feeds.publish.clock import utcnow
from common.service.choreography import OrderReactions, require, rfc3339
from common.service.publishing import Publish
from common.service.storage import AddressColumns, OrderRecords, transition
from invoicing_service.feed import PUBLISH
from invoicing_service.models import Invoice, InvoiceLine, invoice_number


def cancel_invoice(session: Session, publish: Publish, cancellation: OrderCancelled) -> None:
    """An issued invoice becomes cancelled, announced once; a cancelled one stays as it is."""
    require(session, Invoice, cancellation.id)
    moment = utcnow()
    if transition(session, Invoice, cancellation.id, Invoice.state == "issued", state="cancelled", cancelled=moment):
        publish.append(session, INVOICE_CANCELLED, {"order_id": cancellation.id, "cancelled": rfc3339(moment)})


INVOICES = OrderRecords(
    Invoice, InvoiceLine,
    record=lambda order: {"number": invoice_number(order.created, order.id), "total": order.total,
                           **AddressColumns.address_values(order.billing_address)},
    line=lambda line: {"price": line.item.price, "amount": line.amount})
REACTIONS = OrderReactions(INVOICES, PUBLISH, INVOICE_ISSUED, cancel_invoice)
EVENT_TYPES = REACTIONS.event_types
handle, handle_batch = REACTIONS.handle, REACTIONS.handle_batch

"""What the order service does with the invoicing and shipping feeds: it keeps each order's status.

Every fact is set once (its column empty until then), so an entry applied again changes nothing; each feed is
read in position order, so an order's facts from one service arrive in the order that service made them.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from common.contracts import (
    INVOICE_CANCELLED,
    INVOICE_ISSUED,
    SHIPMENT_CANCELLATION_REFUSED,
    SHIPMENT_CANCELLED,
    SHIPMENT_DISPATCHED,
    SHIPMENT_PREPARED,
    InvoiceCancelled,
    InvoiceDocument,
    ShipmentCancellationRefused,
    ShipmentCancelled,
    ShipmentDispatched,
    ShipmentDocument,
)
from common.feeds import FeedEntry
from common.feeds.publish.clock import utcnow
from common.service.storage import read_document, transition
from order_service.models import OrderStatus as S

# (entry, its document as the paired model reads it) → (conditions, values) of the status UPDATE
Reaction = Callable[[FeedEntry, Any], tuple[tuple[Any, ...], dict[str, Any]]]


def _time(text: str | None) -> datetime:
    """An RFC 3339 time from a document or an entry's atom:updated (now, when the entry has none)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else utcnow()


INVOICING: dict[str, tuple[type[BaseModel], Reaction]] = {
    INVOICE_ISSUED: (InvoiceDocument, lambda entry, doc: (
        (S.invoice_state.is_(None),),
        {"invoice_state": "issued", "invoice_url": entry.link, "invoiced": _time(entry.updated)})),
    INVOICE_CANCELLED: (InvoiceCancelled, lambda entry, doc: (
        (S.invoice_cancelled.is_(None),), {"invoice_state": "cancelled", "invoice_cancelled": _time(doc.cancelled)})),
}

SHIPPING: dict[str, tuple[type[BaseModel], Reaction]] = {
    SHIPMENT_PREPARED: (ShipmentDocument, lambda entry, doc: (
        (S.shipment_state.is_(None),),
        {"shipment_state": "pending", "shipment_url": entry.link, "shipment_prepared": _time(entry.updated)})),
    SHIPMENT_DISPATCHED: (ShipmentDispatched, lambda entry, doc: (
        (S.dispatched.is_(None),), {"shipment_state": "dispatched", "dispatched": _time(doc.dispatched)})),
    SHIPMENT_CANCELLED: (ShipmentCancelled, lambda entry, doc: (
        (S.shipment_cancelled.is_(None),),
        {"shipment_state": "cancelled", "shipment_cancelled": _time(doc.cancelled)})),
    SHIPMENT_CANCELLATION_REFUSED: (ShipmentCancellationRefused, lambda entry, doc: (
        (S.cancellation_refused.is_(None),), {"cancellation_refused": _time(doc.refused)})),
}


class StatusHandler:
    """A follower's handler that records each known event of one feed in the order's status row."""

    def __init__(self, reactions: dict[str, tuple[type[BaseModel], Reaction]]):
        self.reactions = reactions
        self.event_types = frozenset(reactions)

    def __call__(self, session: Session, entry: FeedEntry) -> None:
        model, react = self.reactions[entry.event_type]
        document: Any = read_document(entry, model, f"{entry.event_type} document")  # each model has order_id
        conditions, values = react(entry, document)
        moved = transition(session, S, document.order_id, *conditions, **values)
        if not moved and session.get(S, document.order_id) is None:  # never count as handled what was not stored
            raise LookupError(f"{entry.event_type} for order {document.order_id}, which is not an order here")


handle_invoicing = StatusHandler(INVOICING)
handle_shipping = StatusHandler(SHIPPING)

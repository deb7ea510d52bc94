"""An order's status as the order service has heard it from the other services' feeds, and its cancellation.

Nothing here calls another service: the status is what the followers stored (order_service/handlers.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from common.contracts import ORDER_CANCELLED
from common.feeds.publish.clock import utcnow
from common.service.choreography import rfc3339
from common.service.security import http_link
from order_service.feed import PUBLISH
from order_service.models import Order, OrderStatus


class AlreadyDispatched(Exception):
    """The order service knows the shipment left: a cancellation can no longer be asked for."""


def cancellation_state(status: OrderStatus) -> str | None:
    """requested → done once invoice and shipment are both cancelled, refused once shipping refused."""
    if status.cancel_requested is None:
        return None
    if status.cancellation_refused is not None:
        return "refused"
    if status.invoice_state == "cancelled" and status.shipment_state == "cancelled":
        return "done"
    return "requested"


def status_document(status: OrderStatus) -> dict:
    """`GET /api/orders/<id>/status`: null where nothing has been heard yet."""
    def part(state: str | None, url: str | None) -> dict | None:
        return None if state is None else {"state": state, "url": url}

    cancellation = None
    if status.cancel_requested is not None:
        cancellation = {"state": cancellation_state(status), "requested": rfc3339(status.cancel_requested)}
    return {"order_id": status.order_id, "invoice": part(status.invoice_state, status.invoice_url),
            "shipment": part(status.shipment_state, status.shipment_url), "cancellation": cancellation}


def status_of(session: Session, order_id: int, lock: bool = False) -> OrderStatus:
    """The order's status row (with `lock`, locked for a change to come); LookupError for an unknown order."""
    status = session.get(OrderStatus, order_id, populate_existing=True, with_for_update=lock)
    if status is None:
        raise LookupError(f"no order with id {order_id}")
    return status


def cancel(session: Session, order_id: int) -> tuple[OrderStatus, bool]:
    """Ask for the order's cancellation: an OrderCancelled entry the first time (True), nothing more after.

    The status row is read and locked first, then changed, so two cancels, or a cancel and the follower hearing
    ShipmentDispatched, cannot both win (the other waits for this transaction). A check-and-change UPDATE alone
    would, on PostgreSQL, miss an order whose INSERT commits just after it, and the read after it would then take
    that order for dispatched. LookupError for an unknown order; AlreadyDispatched when the shipment is known to
    have left and no cancellation was asked for before.
    """
    status = status_of(session, order_id, lock=True)
    if status.cancel_requested is not None:
        return status, False
    if status.shipment_state == "dispatched":
        raise AlreadyDispatched(f"order {order_id} was dispatched already: it can no longer be cancelled")
    moment = utcnow()
    status.cancel_requested = moment
    PUBLISH.append(session, ORDER_CANCELLED, {"id": order_id, "cancelled": rfc3339(moment)})
    return status, True


@dataclass(frozen=True)
class Step:
    """One line of the order page's timeline."""

    at: datetime | None  # None: not happened yet
    text: str
    link: str | None = None

    def __post_init__(self):
        # A link that came from another service's feed is a link only when it is http or https; for people, it
        # leads to the resource's page next to its JSON document (…/api/invoices/7 → …/invoices/7).
        link = http_link(self.link)
        if link:
            head, api, tail = link.rpartition("/api/")
            link = f"{head}/{tail}" if api else link
        object.__setattr__(self, "link", link)


def timeline(order: Order, status: OrderStatus) -> list[Step]:
    """What happened to the order, in time order, then what is still awaited."""
    done = [Step(order.created, "Order placed")]
    facts = [(status.cancel_requested, "Cancellation requested", None),
             (status.invoiced, "Invoice issued", status.invoice_url),
             (status.invoice_cancelled, "Invoice cancelled", status.invoice_url),
             (status.shipment_prepared, "Shipment prepared", status.shipment_url),
             (status.dispatched, "Shipment dispatched", status.shipment_url),
             (status.shipment_cancelled, "Shipment cancelled", status.shipment_url),
             (status.cancellation_refused, "Cancellation refused: the shipment was dispatched already",
              status.shipment_url)]
    happened = [(at, text, link) for at, text, link in facts if at is not None]
    done += [Step(at, text, link) for at, text, link in sorted(happened, key=lambda fact: fact[0])]
    awaited = []
    if status.invoice_state is None:
        awaited.append(Step(None, "Invoice: waiting for the invoicing feed"))
    if status.shipment_state is None:
        awaited.append(Step(None, "Shipment: waiting for the shipping feed"))
    return done + awaited

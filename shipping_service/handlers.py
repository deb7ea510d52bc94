"""What shipping does with each event of the order feed, publishing each effect in the same transaction:
OrderCreated → a pending shipment (ShipmentPrepared), once; OrderCancelled → the shipment cancelled
(ShipmentCancelled) while it is pending, or the cancellation refused (ShipmentCancellationRefused) once it is
dispatched. And the one thing people do here: dispatch a pending shipment (ShipmentDispatched)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from common.contracts import (
    SHIPMENT_CANCELLATION_REFUSED,
    SHIPMENT_CANCELLED,
    SHIPMENT_DISPATCHED,
    SHIPMENT_PREPARED,
    OrderCancelled,
)
from common.feeds.publish.clock import utcnow
from common.service.choreography import OrderReactions, require, rfc3339
from common.service.publishing import Publish
from common.service.storage import AddressColumns, OrderRecords, transition
from shipping_service.feed import PUBLISH
from shipping_service.models import Shipment, ShipmentLine

REFUSAL = "the shipment was dispatched already"


class NotDispatchable(Exception):
    """The shipment is cancelled: it can never be dispatched."""


def cancel_shipment(session: Session, publish: Publish, cancellation: OrderCancelled) -> None:
    """Pending → cancelled; dispatched → refused (once); cancelled → nothing more."""
    order_id = cancellation.id
    require(session, Shipment, order_id)
    moment = utcnow()
    if transition(session, Shipment, order_id, Shipment.state == "pending", state="cancelled", cancelled=moment):
        publish.append(session, SHIPMENT_CANCELLED, {"order_id": order_id, "cancelled": rfc3339(moment)})
    elif transition(session, Shipment, order_id, Shipment.state == "dispatched", Shipment.refused.is_(None),
                    refused=moment):
        publish.append(session, SHIPMENT_CANCELLATION_REFUSED,
                       {"order_id": order_id, "refused": rfc3339(moment), "reason": REFUSAL})


def dispatch(session: Session, order_id: int) -> Shipment:
    """Pending → dispatched with its ShipmentDispatched entry; dispatched already → as it is, no second entry.

    LookupError when there is no such shipment, NotDispatchable when it is cancelled.
    """
    # Read and locked first, then changed: a racing cancellation waits for this transaction. A check-and-change
    # UPDATE alone is not enough here: on PostgreSQL it misses a shipment whose INSERT commits just after it, and
    # the read that follows would then find that shipment pending and answer as if it had been dispatched.
    # The feed's append lock before the shipment's row lock: the order the follower's transactions take them in
    # (a page's earlier entries append, then a cancellation locks its shipment), else the two can deadlock.
    PUBLISH.lock(session)
    try:
        shipment: Shipment = require(session, Shipment, order_id)
    except LookupError:
        raise LookupError(f"no shipment for order {order_id}") from None
    if shipment.state == "cancelled":
        raise NotDispatchable(f"the shipment for order {order_id} is cancelled: it cannot be dispatched")
    if shipment.state == "pending":
        moment = utcnow()
        shipment.state, shipment.dispatched = "dispatched", moment
        PUBLISH.append(session, SHIPMENT_DISPATCHED, {"order_id": order_id, "dispatched": rfc3339(moment)})
    return shipment


SHIPMENTS = OrderRecords(
    Shipment, ShipmentLine,
    record=lambda order: AddressColumns.address_values(order.shipping_address),
    line=lambda line: {})
REACTIONS = OrderReactions(SHIPMENTS, PUBLISH, SHIPMENT_PREPARED, cancel_shipment)
EVENT_TYPES = REACTIONS.event_types
handle, handle_batch = REACTIONS.handle, REACTIONS.handle_batch

"""A consumer of the order feed that publishes what it does: the record an order becomes, announced in the
consumer's own feed, and the consumer's part in a cancellation — each entry written in the transaction that
makes the effect it records.

Invoicing and shipping are both this, with their own record and their own answer to a cancellation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.contracts import ORDER_CANCELLED, ORDER_CREATED, OrderCancelled
from common.feeds import FeedEntry
from common.service.publishing import Publish
from common.service.storage import OrderRecords, read_document

EVENT_TYPES = frozenset({ORDER_CREATED, ORDER_CANCELLED})


def rfc3339(moment: datetime) -> str:
    """A timestamp as documents carry it: RFC 3339, UTC, "Z"."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def require(session: Session, model: type[Any], order_id: int) -> Any:
    """The record of `order_id`, locked for the change to come; LookupError when the order was never handled.

    Entries of one feed are handled in position order, so an OrderCancelled finds the record its OrderCreated made;
    without one, the cancellation has nothing to apply to and must not count as handled (it is retried, then
    kept as a dead letter).
    """
    record = session.scalars(select(model).where(model.order_id == order_id).with_for_update()).first()
    if record is None:
        raise LookupError(f"no record of order {order_id}: its OrderCreated has not been handled here")
    return record


@dataclass(frozen=True)
class OrderReactions:
    """A handler of the order feed: OrderCreated → a record and its `created` entry; OrderCancelled → `cancel`."""

    records: OrderRecords
    publish: Publish
    created: str  # the event type announcing a new record: InvoiceIssued, ShipmentPrepared
    cancel: Callable[[Session, Publish, OrderCancelled], None]
    event_types: frozenset[str] = EVENT_TYPES

    def handle_batch(self, session: Session, entries: list[FeedEntry]) -> None:
        """Apply the entries in position order: runs of OrderCreated as one insert, each cancellation after."""
        for event_type, run in groupby(entries, key=lambda entry: entry.event_type):
            if event_type == ORDER_CREATED:
                self._create(session, list(run))
            elif event_type == ORDER_CANCELLED:
                for entry in run:
                    self.cancel(session, self.publish, read_document(entry, OrderCancelled, "cancellation"))

    def handle(self, session: Session, entry: FeedEntry) -> None:
        self.handle_batch(session, [entry])

    def _create(self, session: Session, entries: list[FeedEntry]) -> None:
        inserted = self.records.handle_batch(session, entries)
        if inserted:  # announced only by the transaction that stored them, in feed order
            model = self.records.model
            records = session.scalars(select(model).where(model.order_id.in_(inserted)).order_by(model.position))
            self.publish.append_many(session, self.created, [record.to_document() for record in records])

"""How a follower keeps the parts of a published document in its own tables, once.

The received order checked against its published model and its entry, and the insert that stores each order's
record exactly once (the column mixins it fills live in columns.py).

"Handled once" compares content: each record keeps the SHA-256 of the order document it was made from (`digest`,
over the document as the contract reads it, so formatting and fields the contract ignores do not count). The same
order again with the same digest is a redelivery, skipped; with another digest it is a conflict (ConflictingOrder),
which the follower turns into a dead letter with that reason. The entry's atom:id and position would not do: after
the order service's database is recreated, order 3 comes back with the same atom:id at the same position.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import ColumnElement, CursorResult, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.contracts import OrderDocument, messages
from common.contracts.orders import Line, entry_disagreement
from common.feeds import FeedEntry
from common.service.columns import AddressColumns, CustomerColumns, DigestColumn, ItemLineColumns, Money

log = logging.getLogger(__name__)
DocumentT = TypeVar("DocumentT", bound=BaseModel)
__all__ = ["AddressColumns", "ConflictingOrder", "CustomerColumns", "DigestColumn", "ItemLineColumns", "Money",
           "OrderRecords", "add_once", "digest", "read_document", "read_order", "transition"]


class ConflictingOrder(ValueError):
    """An order id already handled, now with different content."""


def read_document(entry: FeedEntry, model: type[DocumentT], what: str) -> DocumentT:
    """The document an entry carries, checked against its published model; ValueError says why not."""
    try:
        return model.model_validate_json(entry.content)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise ValueError(f"content is not JSON: {exc.errors()[0]['msg']}") from None
        problems = "; ".join(f"{where}: {text[:200]}" for where, text in messages(exc).items())
        raise ValueError(f"the {what} breaks its contract: {problems}") from None


def read_order(entry: FeedEntry) -> OrderDocument:
    """The order an OrderCreated entry carries, checked against its published model and against the entry (the
    order its atom:id and alternate link name); ValueError says why not."""
    order = read_document(entry, OrderDocument, "order document")
    problem = entry_disagreement(order.id, entry.id, entry.link)
    if problem:
        raise ValueError(problem)
    return order


def digest(order: OrderDocument) -> str:
    """SHA-256 of the order document as the contract reads it."""
    return hashlib.sha256(order.model_dump_json().encode("utf-8")).hexdigest()


def transition(session: Session, model: type[Any], order_id: int, *conditions: ColumnElement[bool],
               **values: Any) -> bool:
    """Change the record of `order_id` where `conditions` hold (its state, say), in one UPDATE: True when it did.

    The check and the change are one statement, so two transactions racing for the same record (a dispatch and a
    cancellation) cannot both win: on PostgreSQL the second waits for the first and re-checks the conditions.
    """
    # An UPDATE's result is a CursorResult (it has the rowcount); Session.execute is typed for every statement.
    result = cast("CursorResult[Any]", session.execute(
        update(model).where(model.order_id == order_id, *conditions).values(**values)))
    return result.rowcount == 1


def add_once(session: Session, model: type[Any], records: list[dict[str, Any]], line_model: type[Any] | None = None,
             lines: Sequence[dict[str, Any]] = ()) -> set[int]:
    """Insert the records (keyed by "order_id") and their lines, skipping orders already stored with the same
    "digest"; returns the new ids. ConflictingOrder when an order id comes with another digest than stored.

    It checks first, and the insert itself does nothing on a unique-key conflict (ON CONFLICT DO NOTHING … RETURNING),
    so a racing instance that inserted in between is tolerated without failing the transaction; lines are added
    only for the records this call inserted.
    """
    fresh: dict[int, dict[str, Any]] = {}
    for record in records:
        first = fresh.setdefault(record["order_id"], record)  # the same order twice in a batch: once
        _same(first, record.get("digest"), record.get("position"))
    for key, stored, position in session.execute(select(model.order_id, model.digest, model.position).where(
            model.order_id.in_(list(fresh)))):
        _same(fresh.pop(key), stored, position)
    if not fresh:
        return set()
    dialect = session.get_bind().dialect.name
    table = model.__table__  # Core inserts: the ORM's bulk path costs more than the insert (issue 12, catch-up)
    inserted: set[int]
    if dialect in ("sqlite", "postgresql"):
        upsert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
        statement = upsert.on_conflict_do_nothing(index_elements=["order_id"])
        inserted = set(session.scalars(statement.returning(table.c.order_id), list(fresh.values())))
    else:  # another database: each unique violation contained in a savepoint
        inserted = set()
        for key, record in fresh.items():
            try:
                with session.begin_nested():
                    session.execute(insert(model).values(**record))
                inserted.add(key)
            except IntegrityError:
                pass
    raced = [key for key in fresh if key not in inserted]  # another instance stored them meanwhile
    if raced:
        for key, stored, position in session.execute(select(model.order_id, model.digest, model.position).where(
                model.order_id.in_(raced))):
            _same(fresh[key], stored, position)
    new_lines = [line for line in lines if line["order_id"] in inserted]
    if new_lines:
        if line_model is None:
            raise TypeError("add_once got lines without a line_model to store them in")
        session.execute(insert(line_model.__table__), new_lines)
    return inserted


def _same(record: dict[str, Any], stored_digest: str | None, stored_position: int | None) -> None:
    """ConflictingOrder unless `record` is the order already stored (rows without a digest are not compared)."""
    if stored_digest is not None and record.get("digest") is not None and stored_digest != record["digest"]:
        raise ConflictingOrder(f"order {record['order_id']} was already handled (from feed position "
                               f"{stored_position}) with different content; this entry is not applied")


@dataclass(frozen=True)
class OrderRecords:
    """A follower's handler that keeps one record per order (and its lines) from OrderCreated entries, once.

    The common columns (order id and URL, feed position, customer; line number, item, quantity) are filled here;
    `record` and `line` add what this service keeps besides (an address, amounts).
    """

    model: type[Any]
    line_model: type[Any]
    record: Callable[[OrderDocument], dict[str, Any]]
    line: Callable[[Line], dict[str, Any]]

    def handle_batch(self, session: Session, entries: list[FeedEntry]) -> set[int]:
        """Store the records of the orders in `entries` (in order) that do not exist yet; returns their ids."""
        records: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        seen: set[int] = set()
        for entry in entries:
            order = read_order(entry)
            records.append({"order_id": order.id, "order_url": entry.link, "position": entry.position,
                            "digest": digest(order),
                            **CustomerColumns.customer_values(order.customer), **self.record(order)})
            if order.id in seen:
                continue  # the same order again in this batch: add_once checks it is the same, its lines are in
            seen.add(order.id)
            lines += [{"order_id": order.id, "line_no": n, "item_id": line.item.id, "item_name": line.item.name,
                       "quantity": line.quantity, **self.line(line)} for n, line in enumerate(order.lines, 1)]
        stored = add_once(session, self.model, records, self.line_model, lines)
        if stored:  # one line per transaction, not per order: a catch-up stores thousands
            ids = sorted(stored)
            context = {"order_id": ids[0]} if len(ids) == 1 else {"order_ids": ids}
            log.info("%s stored for order(s) %s (feed position %d)", self.model.__name__,
                     ids[0] if len(ids) == 1 else f"{ids[0]}…{ids[-1]} ({len(ids)})", entries[-1].position,
                     extra={**context, "position": entries[-1].position})
        return stored

    def handle(self, session: Session, entry: FeedEntry) -> set[int]:
        """Store the record of the order in `entry` unless it already exists."""
        return self.handle_batch(session, [entry])

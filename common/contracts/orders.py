"""The order document as consumers receive it in an OrderCreated entry, checked, plus the columns they keep of it."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Integer, Text, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from common.feeds.follow.client import FeedEntry
from common.contracts.money import to_money

ORDER_CREATED = "OrderCreated"


@dataclass(frozen=True)
class Customer:
    id: int
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True)
class Address:
    street: str
    zip: str
    city: str


@dataclass(frozen=True)
class Line:
    item_id: int
    name: str
    price: Decimal
    quantity: int


@dataclass(frozen=True)
class Order:
    id: int
    customer: Customer
    shipping_address: Address
    billing_address: Address
    lines: tuple[Line, ...]
    total: Decimal
    url: str | None


def read_order(entry: FeedEntry) -> Order:
    """The order in an OrderCreated entry; ValueError naming what is missing or wrong."""
    try:
        doc = entry.json()
    except ValueError as exc:
        raise ValueError(f"content is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("content is not a JSON object")
    customer = _object(doc, "customer")
    lines = doc.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ValueError("'lines' must be a non-empty list")
    order = Order(
        id=_int(doc, "id"),
        customer=Customer(_int(customer, "id"), _str(customer, "first_name"), _str(customer, "last_name"),
                          _str(customer, "email")),
        shipping_address=_address(doc, "shipping_address"),
        billing_address=_address(doc, "billing_address"),
        lines=tuple(_line(line) for line in lines),
        total=to_money(_field(doc, "total")),
        url=entry.link)
    if sum(line.price * line.quantity for line in order.lines) != order.total:
        raise ValueError(f"total {order.total} is not the sum of the lines")
    return order


def add_once(session: Session, model, records: list[dict], line_model=None, lines: list[dict] = ()) -> set[int]:
    """Insert the records (keyed by "order_id") and their lines, skipping orders already stored; returns the new ids.

    It checks first, and the insert itself does nothing on a unique-key conflict (ON CONFLICT DO NOTHING … RETURNING),
    so a racing instance that inserted in between is tolerated without failing the transaction; lines are added
    only for the records this call inserted.
    """
    fresh: dict[int, dict] = {}
    for record in records:
        fresh.setdefault(record["order_id"], record)  # the same order twice in a batch: the first wins
    existing = session.scalars(select(model.order_id).where(model.order_id.in_(list(fresh))))
    for key in existing:
        del fresh[key]
    if not fresh:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect in _UPSERT:
        statement = _UPSERT[dialect](model).on_conflict_do_nothing(index_elements=["order_id"])
        inserted = set(session.scalars(statement.returning(model.order_id), list(fresh.values())))
    else:  # another database: each unique violation contained in a savepoint
        inserted = set()
        for key, record in fresh.items():
            try:
                with session.begin_nested():
                    session.execute(insert(model).values(**record))
                inserted.add(key)
            except IntegrityError:
                pass
    new_lines = [line for line in lines if line["order_id"] in inserted]
    if new_lines:
        session.execute(insert(line_model), new_lines)
    return inserted


_UPSERT = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def _field(doc: dict, name: str):
    if name not in doc:
        raise ValueError(f"missing field {name!r}")
    return doc[name]


def _object(doc: dict, name: str) -> dict:
    value = _field(doc, name)
    if not isinstance(value, dict):
        raise ValueError(f"{name!r} must be an object")
    return value


def _int(doc: dict, name: str) -> int:
    value = _field(doc, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name!r} must be a positive integer, got {value!r}")
    return value


def _str(doc: dict, name: str) -> str:
    value = _field(doc, name)
    if not isinstance(value, str):
        raise ValueError(f"{name!r} must be a string, got {value!r}")
    return value


def _address(doc: dict, name: str) -> Address:
    value = _object(doc, name)
    return Address(_str(value, "street"), _str(value, "zip"), _str(value, "city"))


def _line(line) -> Line:
    if not isinstance(line, dict):
        raise ValueError("each line must be an object")
    item = _object(line, "item")
    return Line(_int(item, "id"), _str(item, "name"), to_money(_field(item, "price")), _int(line, "quantity"))


class CustomerColumns:
    """The customer as a consumer keeps it (mixin for a mapped class)."""

    customer_id: Mapped[int] = mapped_column(Integer)
    first_name: Mapped[str] = mapped_column(Text)
    last_name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)

    @staticmethod
    def customer_values(customer: Customer) -> dict:
        return {"customer_id": customer.id, "first_name": customer.first_name, "last_name": customer.last_name,
                "email": customer.email}

    def customer_json(self) -> dict:
        return {"id": self.customer_id, "first_name": self.first_name, "last_name": self.last_name,
                "email": self.email}


class AddressColumns:
    """The one address a consumer needs (billing for invoicing, shipping for shipping)."""

    street: Mapped[str] = mapped_column(Text)
    zip: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text)

    @staticmethod
    def address_values(address: Address) -> dict:
        return {"street": address.street, "zip": address.zip, "city": address.city}

    def address_json(self) -> dict:
        return {"street": self.street, "zip": self.zip, "city": self.city}


def order_page_url(api_url: str | None) -> str | None:
    """The order's HTML page next to its JSON document (…/api/orders/7 → …/orders/7), for links back."""
    if not api_url:
        return None
    head, sep, order_id = api_url.rpartition("/api/orders/")
    return f"{head}/orders/{order_id}" if sep and order_id.isdigit() else api_url

"""Column types and mixins for what a follower keeps of an order: money as cents, lines, digest, customer, address."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Dialect, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from common.contracts.money import CENT, to_money
from common.contracts.orders import Address, Customer
from common.feeds.tables import Int64


class Money(TypeDecorator[Decimal]):
    """A Decimal column kept as integer cents, so SQLite and PostgreSQL both store it exactly."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else int(to_money(value) / CENT)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else (Decimal(value) * CENT).quantize(CENT)


class ItemLineColumns:
    """An order line as a follower keeps it: its number and item (mixin; the order_id key is the table's own)."""

    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(Int64)
    item_name: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)


class DigestColumn:
    """The SHA-256 of the document a record was made from (mixin for a mapped class)."""

    digest: Mapped[str | None] = mapped_column(String(64))


class CustomerColumns:
    """The customer as a follower keeps it (mixin for a mapped class)."""

    customer_id: Mapped[int] = mapped_column(Int64)
    first_name: Mapped[str] = mapped_column(Text)
    last_name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)

    @staticmethod
    def customer_values(customer: Customer) -> dict[str, Any]:
        return {"customer_id": customer.id, "first_name": customer.first_name, "last_name": customer.last_name,
                "email": customer.email}

    def customer_json(self) -> dict[str, Any]:
        return {"id": self.customer_id, "first_name": self.first_name, "last_name": self.last_name,
                "email": self.email}


class AddressColumns:
    """The one address a follower needs (billing for invoicing, shipping for shipping)."""

    street: Mapped[str] = mapped_column(Text)
    zip: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text)

    @staticmethod
    def address_values(address: Address) -> dict[str, Any]:
        return {"street": address.street, "zip": address.zip, "city": address.city}

    def address_json(self) -> dict[str, Any]:
        return {"street": self.street, "zip": self.zip, "city": self.city}


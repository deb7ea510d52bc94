"""The order feed's published language: the order document (OrderCreated) and the order request behind it.

One set of rules: the order service checks a request with `OrderRequest` and publishes an `OrderDocument`;
every follower checks what it receives with `OrderDocument`, so it stores nothing the order service would refuse.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from common.contracts.base import Contract, Document, SchemaVersion, Timestamp, check_total
from common.contracts.fields import MONEY_MAX, CustomerId, ItemId, Money, OrderId, XmlText, at_most, explained

ORDER_CREATED = "OrderCreated"
ORDER_CANCELLED = "OrderCancelled"
ADDRESS_MAX = 200
QUANTITY_MIN, QUANTITY_MAX = 1, 9999
LINES_MAX = 1000

Quantity = Annotated[int, Field(strict=True, ge=QUANTITY_MIN, le=QUANTITY_MAX),
                     explained(f"must be from {QUANTITY_MIN} to {QUANTITY_MAX}", int_type="must be an integer")]
# In a published document the same bounds read as a fact about the field.
PositiveQuantity = Annotated[int, Field(strict=True, ge=QUANTITY_MIN, le=QUANTITY_MAX),
                             explained(f"must be a positive integer up to {QUANTITY_MAX}")]
AddressPart = Annotated[str, XmlText(ADDRESS_MAX, required=True)]
PersonName = Annotated[str, XmlText(100)]
Email = Annotated[str, XmlText(254)]
ItemName = Annotated[str, XmlText(200)]
Price = Annotated[Money, at_most(MONEY_MAX)]
OrderTotal = Annotated[Money, at_most(MONEY_MAX * QUANTITY_MAX * LINES_MAX)]


class _Request(Contract):
    """Input from a client: an absent field is checked as null, so it gets the field's own message."""

    @model_validator(mode="before")
    @classmethod
    def _absent_is_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**dict.fromkeys(cls.model_fields), **data}
        return data


class Address(Contract):
    street: AddressPart
    zip: AddressPart
    city: AddressPart


class AddressRequest(_Request, Address):
    """An address as a client sends it."""


AddressField = Annotated[AddressRequest, explained("must be an object with street, zip and city")]


class Customer(Contract):
    id: CustomerId
    first_name: PersonName
    last_name: PersonName
    email: Email


class Item(Contract):
    id: ItemId
    name: ItemName
    price: Price


class Line(Contract):
    item: Item
    quantity: PositiveQuantity

    @property
    def amount(self) -> Decimal:
        return self.item.price * self.quantity


class OrderDocument(Document):
    """The order document: what `GET /api/orders/<id>` returns and an OrderCreated entry carries."""

    model_config = ConfigDict(title=ORDER_CREATED)
    # The contract fixes the order document's fields to the letter and it never changes once placed, so it is
    # read at any version but written without one (absent means 1).
    schema_version: SchemaVersion = Field(1, exclude=True)
    id: OrderId
    created: Timestamp
    customer: Customer
    shipping_address: Address
    billing_address: Address
    lines: Annotated[list[Line], Field(min_length=1, max_length=LINES_MAX),
                     explained(f"must be a non-empty list of at most {LINES_MAX} lines")]
    total: OrderTotal

    @model_validator(mode="after")
    def _total_is_the_sum_of_the_lines(self) -> OrderDocument:
        check_total((line.amount for line in self.lines), self.total)
        return self


class LineRequest(_Request):
    item_id: ItemId
    quantity: Quantity


class OrderRequest(_Request):
    """The body of `POST /api/orders` (the HTML form is checked by the same limits)."""

    customer_id: CustomerId
    shipping_address: AddressField
    billing_address: AddressField
    lines: Annotated[list[Annotated[LineRequest, explained("must be an object with item_id and quantity")]],
                     Field(min_length=1, max_length=LINES_MAX),
                     explained("must be a non-empty array of {item_id, quantity}",
                               too_long=f"must hold at most {LINES_MAX} lines")]


class OrderCancelled(Document):
    """An OrderCancelled entry's content: the customer asked to cancel order `id` at `cancelled`."""

    model_config = ConfigDict(title=ORDER_CANCELLED)
    id: OrderId
    cancelled: Timestamp


def order_page_url(api_url: str | None) -> str | None:
    """The order's HTML page next to its JSON document (…/api/orders/7 → …/orders/7), for links back."""
    if not api_url:
        return None
    head, sep, order_id = api_url.rpartition("/api/orders/")
    return f"{head}/orders/{order_id}" if sep and order_id.isdigit() else api_url


_ENTRY_ID_ORDER = re.compile(r"[:/]order/(\d+)$")  # tag:atomshop.example,2026:order/<id>
_LINK_ORDER = re.compile(r"/api/orders/(\d+)$")


def entry_disagreement(order_id: int, entry_id: str, link: str | None) -> str | None:
    """Why an OrderCreated entry (its atom:id, its alternate link) does not name the order its document is about;
    None when both name it. The order feed's entry ids end with order/<id>, its links with /api/orders/<id>."""
    named = _ENTRY_ID_ORDER.search(entry_id or "")
    if named is None:
        return f"the entry id {entry_id[:200]!r} names no order (…order/<id>)"
    if int(named[1]) != order_id:
        return f"the document is order {order_id} but its entry {entry_id[:200]!r} is about order {named[1]}"
    if link is not None:
        linked = _LINK_ORDER.search(link.split("?", 1)[0])
        if linked is None or int(linked[1]) != order_id:
            return f"the document is order {order_id} but its entry links to {link[:200]!r}"
    return None

"""The invoicing feed's published language: the invoice document (InvoiceIssued) and InvoiceCancelled."""
from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from common.contracts.base import Contract, Document, SchemaVersion, Timestamp, check_total
from common.contracts.fields import MONEY_MAX, Money, OrderId, Url, XmlText, at_most, explained
from common.contracts.orders import LINES_MAX, QUANTITY_MAX, Address, Customer, Item, OrderTotal, PositiveQuantity

INVOICE_ISSUED = "InvoiceIssued"
INVOICE_CANCELLED = "InvoiceCancelled"
InvoiceState = Literal["issued", "cancelled"]
INVOICE_STATES: tuple[InvoiceState, ...] = get_args(InvoiceState)
LineAmount = Annotated[Money, at_most(MONEY_MAX * QUANTITY_MAX)]


class InvoiceLine(Contract):
    item: Item
    quantity: PositiveQuantity
    amount: LineAmount

    @model_validator(mode="after")
    def _amount_is_price_times_quantity(self) -> InvoiceLine:
        if self.item.price * self.quantity != self.amount:
            raise PydanticCustomError("atomshop", "amount {amount} is not price × quantity",
                                      {"amount": str(self.amount)})
        return self


class InvoiceDocument(Document):
    """The invoice document: what `GET /api/invoices/<order_id>` returns and an InvoiceIssued entry carries."""

    model_config = ConfigDict(title=INVOICE_ISSUED)
    schema_version: SchemaVersion = 2  # 2: "number"
    order_id: OrderId
    # The invoice's own number, e.g. INV-2026-000003 (schema version 2).
    number: Annotated[str, XmlText(32)] | None = None
    state: InvoiceState
    customer: Customer
    billing_address: Address
    lines: Annotated[list[InvoiceLine], Field(min_length=1, max_length=LINES_MAX),
                     explained(f"must be a non-empty list of at most {LINES_MAX} lines")]
    total: OrderTotal
    order_url: Url | None = None

    @model_validator(mode="after")
    def _total_is_the_sum_of_the_lines(self) -> InvoiceDocument:
        check_total((line.amount for line in self.lines), self.total)
        return self


class InvoiceCancelled(Document):
    """An InvoiceCancelled entry's content: the invoice of order `order_id` was cancelled at `cancelled`."""

    model_config = ConfigDict(title=INVOICE_CANCELLED)
    order_id: OrderId
    cancelled: Timestamp

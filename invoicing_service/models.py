"""Invoicing's own database: invoices, the invoicing feed's notifications and the follower's tracking tables."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.contracts import InvoiceDocument
from common.contracts.money import format_money
from common.feeds import ArchivePageMixin, FeedOriginMixin, NotificationMixin, tracking_models
from common.feeds.tables import Int64, UTCDateTime
from common.service.db import service_metadata
from common.service.storage import AddressColumns, CustomerColumns, DigestColumn, ItemLineColumns, Money


class Base(DeclarativeBase):
    metadata = service_metadata()


class Invoice(CustomerColumns, AddressColumns, DigestColumn, Base):
    """One per order (order_id is the key, so never two); the address is the billing address."""

    __tablename__ = "invoices"
    order_id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=False)
    # The invoice's own number, e.g. INV-2026-000003 (the order's year and id); NULL on invoices issued before it.
    number: Mapped[str | None] = mapped_column(String(32))
    total: Mapped[Decimal] = mapped_column(Money)
    order_url: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Int64)  # the feed position it came from
    state: Mapped[str] = mapped_column(String(20), server_default="issued")  # issued | cancelled
    cancelled: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.line_no", cascade="all, delete-orphan",
                                                      lazy="selectin")

    def to_document(self) -> InvoiceDocument:
        """The invoice document, checked by its published model (made by validating it)."""
        return InvoiceDocument.model_validate({
            "order_id": self.order_id, "number": self.display_number, "state": self.state,
            "customer": self.customer_json(),
            "billing_address": self.address_json(), "lines": [line.to_json() for line in self.lines],
            "total": format_money(self.total), "order_url": self.order_url})

    def to_json(self) -> dict:
        """The invoice document as JSON."""
        return self.to_document().model_dump(mode="json")

    @property
    def display_number(self) -> str:
        """The invoice number; invoices issued before numbers existed show their order id alone."""
        return self.number or f"INV-{self.order_id:06d}"


def invoice_number(created: str, order_id: int) -> str:
    """INV-<year of the order>-<order id, six digits>: unique because order ids are."""
    return f"INV-{created[:4]}-{order_id:06d}"


class InvoiceLine(ItemLineColumns, Base):
    __tablename__ = "invoice_lines"
    order_id: Mapped[int] = mapped_column(Int64, ForeignKey("invoices.order_id"), primary_key=True)
    price: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)

    def to_json(self) -> dict:
        return {"item": {"id": self.item_id, "name": self.item_name, "price": format_money(self.price)},
                "quantity": self.quantity, "amount": format_money(self.amount)}


class Notification(NotificationMixin, Base):
    """The invoicing feed: one row per event, in position order."""


class ArchivePage(ArchivePageMixin, Base):
    """The invoicing feed's full archive pages, rendered once."""


class FeedOrigin(FeedOriginMixin, Base):
    """When the invoicing feed began (one row): the date the feed carries while it has no entries."""


tracking = tracking_models(Base)

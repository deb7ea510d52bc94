"""The order service's tables: customers, items, orders with their lines, and the notifications feed."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.contracts.orders import ADDRESS_MAX
from common.feeds import tracking_models
from common.feeds.publish.archive import ArchivePageMixin
from common.feeds.publish.log import FeedOriginMixin, NotificationMixin
from common.feeds.tables import Int64, UTCDateTime
from common.service.db import service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Int64, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Int64, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Int64, primary_key=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    customer_id: Mapped[int] = mapped_column(Int64, ForeignKey("customers.id"))
    shipping_street: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    shipping_zip: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    shipping_city: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    billing_street: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    billing_zip: Mapped[str] = mapped_column(String(ADDRESS_MAX))
    billing_city: Mapped[str] = mapped_column(String(ADDRESS_MAX))

    customer: Mapped[Customer] = relationship(lazy="joined")
    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.line_no", cascade="all, delete-orphan",
                                                  lazy="selectin")

    def address(self, kind: str) -> dict[str, str]:
        """The shipping or billing address as a dict."""
        return {part: getattr(self, f"{kind}_{part}") for part in ("street", "zip", "city")}

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[int] = mapped_column(Int64, ForeignKey("orders.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(Int64, ForeignKey("items.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))  # the item's price when the order was placed

    item: Mapped[Item] = relationship(lazy="joined")

    @property
    def amount(self) -> Decimal:
        return self.price * self.quantity


class Notification(NotificationMixin, Base):
    """The order feed: one row per event, in position order."""


class ArchivePage(ArchivePageMixin, Base):
    """The order feed's full archive pages, rendered once."""


class OrderStatus(Base):
    """What the order service has learned about an order from the invoicing and shipping feeds (and its own
    cancellation): one row per order, made with it; each column a fact with the time it became true."""

    __tablename__ = "order_status"

    order_id: Mapped[int] = mapped_column(Int64, ForeignKey("orders.id"), primary_key=True, autoincrement=False)
    cancel_requested: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invoice_state: Mapped[str | None] = mapped_column(String(20))  # issued | cancelled
    invoice_url: Mapped[str | None] = mapped_column(Text)
    invoiced: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invoice_cancelled: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shipment_state: Mapped[str | None] = mapped_column(String(20))  # pending | dispatched | cancelled
    shipment_url: Mapped[str | None] = mapped_column(Text)
    shipment_prepared: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dispatched: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shipment_cancelled: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancellation_refused: Mapped[datetime | None] = mapped_column(UTCDateTime())


tracking = tracking_models(Base)


class FeedOrigin(FeedOriginMixin, Base):
    """When the order feed began (one row): the date the feed carries while it has no entries."""

"""Shipping's own database: shipments, the shipping feed's notifications and the follower's tracking tables."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.contracts import ShipmentDocument
from common.feeds import ArchivePageMixin, FeedOriginMixin, NotificationMixin, tracking_models
from common.feeds.tables import Int64, UTCDateTime
from common.service.db import service_metadata
from common.service.storage import AddressColumns, CustomerColumns, DigestColumn, ItemLineColumns


class Base(DeclarativeBase):
    metadata = service_metadata()


class Shipment(CustomerColumns, AddressColumns, DigestColumn, Base):
    """One per order (order_id is the key, so never two); the address is the shipping address."""

    __tablename__ = "shipments"
    order_id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=False)
    order_url: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Int64)  # the feed position it came from
    state: Mapped[str] = mapped_column(String(20), server_default="pending")  # pending | dispatched | cancelled
    dispatched: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When a cancellation came after dispatch and was refused (the state stays dispatched).
    refused: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lines: Mapped[list[ShipmentLine]] = relationship(order_by="ShipmentLine.line_no", cascade="all, delete-orphan",
                                                       lazy="selectin")

    def to_document(self) -> ShipmentDocument:
        """The shipment document, checked by its published model (made by validating it)."""
        return ShipmentDocument.model_validate({
            "order_id": self.order_id, "state": self.state, "customer": self.customer_json(),
            "shipping_address": self.address_json(), "lines": [line.to_json() for line in self.lines],
            "order_url": self.order_url})

    def to_json(self) -> dict:
        """The shipment document as JSON."""
        return self.to_document().model_dump(mode="json")


class ShipmentLine(ItemLineColumns, Base):
    __tablename__ = "shipment_lines"
    order_id: Mapped[int] = mapped_column(Int64, ForeignKey("shipments.order_id"), primary_key=True)

    def to_json(self) -> dict:
        return {"item": {"id": self.item_id, "name": self.item_name}, "quantity": self.quantity}


class Notification(NotificationMixin, Base):
    """The shipping feed: one row per event, in position order."""


class ArchivePage(ArchivePageMixin, Base):
    """The shipping feed's full archive pages, rendered once."""


class FeedOrigin(FeedOriginMixin, Base):
    """When the shipping feed began (one row): the date the feed carries while it has no entries."""


tracking = tracking_models(Base)

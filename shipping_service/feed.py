"""The shipping feed: ShipmentPrepared (the shipment document), ShipmentDispatched, ShipmentCancelled and
ShipmentCancellationRefused, one entry per effect."""
from __future__ import annotations

from common.contracts import SHIPMENT_PREPARED, SHIPPING_FEED
from common.service.publishing import Publish, resource_feed
from shipping_service.models import ArchivePage, FeedOrigin, Notification

SHIPPING_FEED_SPEC = resource_feed("shipping", "shipping", "shipment", "/api/shipments/", "order_id",
                                   SHIPMENT_PREPARED)

PUBLISH = Publish(Notification, SHIPPING_FEED_SPEC, SHIPPING_FEED, archive=ArchivePage, origin=FeedOrigin)

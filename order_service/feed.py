"""The order feed: what an entry says about an order, and the model of each document it publishes."""
from __future__ import annotations

from common.contracts import ORDER_CREATED, ORDER_FEED
from common.service.publishing import Publish, resource_feed
from order_service.models import ArchivePage, FeedOrigin, Notification

# Entry ids `tag:atomshop.example,2026:order/<id>` (OrderCreated) as ever, `…/order/<id>/OrderCancelled` after.
ORDER_FEED_SPEC = resource_feed("order", "orders", "order", "/api/orders/", "id", ORDER_CREATED, html_path="/feed/view")

PUBLISH = Publish(Notification, ORDER_FEED_SPEC, ORDER_FEED, archive=ArchivePage, origin=FeedOrigin)

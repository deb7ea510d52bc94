"""The order feed: what an entry says about an order, and the model of each document it publishes."""
from __future__ import annotations

from common.contracts import ORDER_CREATED, OrderDocument
from common.feeds import FeedSpec
from common.service.publishing import Publish
from order_service.models import Notification

FEED_ID = "tag:atomshop.example,2026:feed/orders"

ORDER_FEED = FeedSpec(
    feed_id=FEED_ID,
    title="atomshop orders",
    author="atomshop order service",
    entry_id=lambda order: f"tag:atomshop.example,2026:order/{order['id']}",
    entry_title=lambda order: f"Order {order['id']}",
    entry_path=lambda order: f"/api/orders/{order['id']}",
)

PUBLISH = Publish(Notification, ORDER_FEED, {ORDER_CREATED: OrderDocument})
